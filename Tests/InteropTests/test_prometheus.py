"""A real Prometheus server (Debian's `prometheus`, which Deploy/install-deps installs) started by the test on a loopback
port of its own, with its own configuration and storage in the test's temporary folder, scrapes an amqp-worker
(--metrics-port) and the broker's rabbitmq_prometheus endpoint; the test reads what it stored through Prometheus's
HTTP API. The Grafana dashboard in Deploy/grafana may only name metrics that scrape saw.

Also here: 10,000 messages with 10,000 different made-up task names leave the worker's /metrics with as many series
as the first hundred did."""
import json
import re
import shutil
import urllib.error
import urllib.parse
import uuid

import kombu
import pytest

from celeryapp import app, broker_url
from conftest import REPO, broker
from test_metrics import free_port, get, samples, wait_for

DASHBOARD = REPO / "Deploy" / "grafana" / "amqp-tasks-dashboard.json"
# The broker's per-queue gauges without turning on per-object metrics for the whole /metrics endpoint.
RABBITMQ_QUEUE_METRICS = ("/metrics/detailed", "queue_coarse_metrics")


def prometheus_binary():
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("the Prometheus server is not installed: run Deploy/install-deps (it installs Debian's prometheus)")
    return path


def rabbitmq_prometheus_port():
    """The port of the local broker's rabbitmq_prometheus endpoint; fails the test when nothing answers there."""
    port = int(broker("prometheus-port").strip())
    path, family = RABBITMQ_QUEUE_METRICS
    try:
        status, body = get(port, f"{path}?family={family}")
    except urllib.error.URLError as error:
        pytest.fail(f"the broker's rabbitmq_prometheus endpoint on 127.0.0.1:{port} does not answer ({error}): a node "
                    "started by an older Deploy/broker lacks the plugin; run Deploy/broker restart")
    assert status == 200, body
    return port


@pytest.fixture
def prometheus(processes, tmp_path):
    """Starts a Prometheus server on a free loopback port that scrapes, every second, the amqp-worker /metrics at
    `worker_port` and the broker's per-queue metrics; returns its port. Stopped (SIGTERM) when the test ends."""

    def start(worker_port):
        server = prometheus_binary()
        rabbitmq_port = rabbitmq_prometheus_port()
        path, family = RABBITMQ_QUEUE_METRICS
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: amqp-worker
    static_configs:
      - targets: ["127.0.0.1:{worker_port}"]
  - job_name: rabbitmq
    metrics_path: {path}
    params:
      family: [{family}]
    static_configs:
      - targets: ["127.0.0.1:{rabbitmq_port}"]
""")
        port = free_port()
        processes.start(
            "prometheus",
            [server, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            "Server is ready to receive web requests.",
        )
        return port

    return start


def api(port, path, **params):
    """The `data` of a Prometheus HTTP API answer."""
    status, body = get(port, f"{path}?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]


def query(port, promql):
    """{frozenset of labels: value} of an instant query's vector."""
    return {frozenset(series["metric"].items()): float(series["value"][1])
            for series in api(port, "/api/v1/query", query=promql)["result"]}


def eventually(what, fetch, predicate, seconds=90):
    """Polls `fetch()` until `predicate` holds for its value, and returns that value; the deadline is only a safety
    net, and its failure shows the last value seen."""
    seen = []

    def holds():
        seen[:] = [fetch()]
        return predicate(seen[0])

    try:
        wait_for(what, holds, seconds=seconds)
    except pytest.fail.Exception:
        pytest.fail(f"timed out waiting for {what}; last seen: {seen[0] if seen else 'nothing'}")
    return seen[0]


# PromQL words that are not metric names: aggregation modifiers, set operators, and what follows `by` etc.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan"}


def metric_names(promql):
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords, label names in
    `{...}` or `by (...)`, durations in `[...]`, strings or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", promql)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()
        if not following.startswith("(") and match.group(0).lower() not in PROMQL_KEYWORDS:
            names.add(match.group(0))
    return names


def dashboard_queries(dashboard):
    """Every PromQL expression of the dashboard: its panels' targets and its query variables."""
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"]["query"])
            assert found, f"variable {variable['name']}: write its query as label_values(metric, label)"
            expressions.append(found.group(1))
    return expressions


def test_metric_names_are_read_from_promql():
    assert metric_names('histogram_quantile(0.95, sum by (le, task) (rate(amqp_tasks_task_runtime_seconds_bucket'
                        '{queue=~"$queue",outcome="x"}[$__rate_interval])))') == {"amqp_tasks_task_runtime_seconds_bucket"}
    assert metric_names("sum(a_total) / ignoring(outcome) group_left sum without (x) (b{c=\"d\"} offset 5m)") == \
        {"a_total", "b"}


def test_the_dashboard_is_an_importable_grafana_dashboard():
    dashboard = json.loads(DASHBOARD.read_text())
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == \
        [("DS_PROMETHEUS", "datasource", "prometheus")]
    assert dashboard["id"] is None and dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
        assert panel["targets"] and len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"], panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, variable["name"]


def delete_queues(*names):
    with kombu.Connection(broker_url()) as connection:
        for name in names:
            connection.default_channel.queue_delete(name)


def test_prometheus_scrapes_the_worker_and_rabbitmq_and_sees_every_dashboard_metric(swift_worker, prometheus, queue):
    worker_port = free_port()
    swift_worker("--metrics-port", str(worker_port))
    port = prometheus(worker_port)
    # Three tasks nobody consumes: the broker's depth gauge of this queue must say 3.
    waiting = f"{queue}.waiting"
    try:
        for n in range(3):
            app.send_task("demo.add", args=[n, n], queue=waiting)
        adds = [app.send_task("demo.add", args=[n, 1], queue=queue) for n in range(15)]
        fails = [app.send_task("demo.fail", args=["no"], queue=queue) for _ in range(5)]
        assert [result.get(timeout=60) for result in adds] == [n + 1 for n in range(15)]
        for result in fails:
            result.get(timeout=60, propagate=False)
            assert result.state == "FAILURE"

        def one_value(promql):
            return lambda: sorted(query(port, promql).values())

        succeeded = f'amqp_tasks_tasks_total{{task="demo.add",outcome="succeeded",queue="{queue}"}}'
        failed = f'amqp_tasks_tasks_total{{task="demo.fail",outcome="failed",queue="{queue}"}}'
        eventually(f"Prometheus to hold {succeeded} 15", one_value(succeeded), lambda values: values == [15.0])
        eventually(f"Prometheus to hold {failed} 5", one_value(failed), lambda values: values == [5.0])
        assert query(port, f'sum(amqp_tasks_task_runtime_seconds_count{{queue="{queue}"}})') == {frozenset(): 20.0}

        waiting_depth = f'rabbitmq_detailed_queue_messages_ready{{vhost="/",queue="{waiting}"}}'
        eventually(f"Prometheus to hold {waiting_depth} 3", one_value(waiting_depth), lambda values: values == [3.0])
        eventually(f"a depth of {queue} in Prometheus", one_value(f'rabbitmq_detailed_queue_messages_ready{{queue="{queue}"}}'),
                   lambda values: len(values) == 1)

        dashboard_names = set().union(*map(metric_names, dashboard_queries(json.loads(DASHBOARD.read_text()))))
        assert {"amqp_tasks_tasks_total", "amqp_tasks_task_runtime_seconds_bucket", "amqp_tasks_tasks_in_progress",
                "rabbitmq_detailed_queue_messages_ready"} <= dashboard_names, dashboard_names
        # The scrapes that brought the counts and depths above brought every other series of their targets too.
        names = set(api(port, "/api/v1/label/__name__/values"))
        assert dashboard_names <= names, f"the dashboard names metrics no scrape has: {sorted(dashboard_names - names)}"
    finally:
        delete_queues(waiting)


def publish_garbage(queue, names):
    """Publishes a Celery v2 task message per name to `queue` on one channel, each confirmed by the broker."""
    with kombu.Connection(broker_url(), transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        for name in names:
            producer.publish("[[], {}, {}]", exchange="", routing_key=queue, content_type="application/json",
                             content_encoding="utf-8", headers={"task": name, "id": str(uuid.uuid4())})


def series(port):
    """Every sample line of a /metrics scrape (one per series)."""
    status, text = get(port, "/metrics")
    assert status == 200, text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_ten_thousand_garbage_task_names_keep_the_number_of_series_bounded(swift_worker, queue):
    port = free_port()
    # Several consumers, each holding many messages, so 10,000 rejections do not take minutes.
    swift_worker("--metrics-port", str(port), "--concurrency", "4", "--prefetch", "50")

    def rejections():
        """Rejections in `queue` counted in /metrics, whatever their `task` label."""
        return sum(value for labels, value in samples(port, "amqp_tasks_tasks_total").items()
                   if {("queue", queue), ("outcome", "rejected")} <= labels)

    names = [f"garbage.{index}.{uuid.uuid4().hex}" for index in range(10_000)]
    try:
        publish_garbage(queue, names[:100])
        wait_for("100 rejections in /metrics", lambda: rejections() == 100, seconds=120)
        series_after_100 = len(series(port))
        publish_garbage(queue, names[100:])
        wait_for("10,000 rejections in /metrics", lambda: rejections() == 10_000, seconds=600)
        after_10_000 = series(port)
        named = [line for line in after_10_000 if "garbage." in line]
        assert len(after_10_000) == series_after_100, f"garbage task names made new series, e.g. {named[:3]}"
        assert not named
        assert samples(port, "amqp_tasks_tasks_total") == {
            frozenset({"task": "unknown", "queue": queue, "outcome": "rejected"}.items()): 10_000}
    finally:
        delete_queues(f"{queue}.dead")
