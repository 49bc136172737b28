"""amqp-worker --metrics-port: /metrics (Prometheus text format, read with prometheus_client's own parser) counts the
tasks a Celery client sent, by task, queue and outcome; /healthz is 503 while the broker connection is gone and 200
again once the worker reconnected."""
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from celeryapp import app
from conftest import binary, broker


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(port, name):
    """{frozenset of labels: value} of every sample called `name` in a scrape."""
    status, text = get(port, "/metrics")
    assert status == 200, text
    return {frozenset(sample.labels.items()): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name}


def wait_for(what, predicate, seconds=60):
    """Polls `predicate` until it holds; the deadline is only a safety net."""
    deadline = time.time() + seconds
    while not predicate():
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_metrics_count_the_tasks_a_celery_client_sent(swift_worker, queue):
    port = free_port()
    swift_worker("--metrics-port", str(port))
    adds = [app.send_task("demo.add", args=[n, 1], queue=queue) for n in range(15)]
    fails = [app.send_task("demo.fail", args=["no"], queue=queue) for _ in range(5)]
    garbage = [app.send_task(f"garbage.{uuid.uuid4().hex}", queue=queue) for _ in range(3)]
    assert [result.get(timeout=60) for result in adds] == [n + 1 for n in range(15)]
    for result in fails + garbage:
        result.get(timeout=60, propagate=False)
        assert result.state == "FAILURE"

    def total(task, outcome):
        return samples(port, "amqp_tasks_tasks_total").get(
            frozenset({"task": task, "queue": queue, "outcome": outcome}.items()), 0)

    # A counter moves once the outcome is recorded, which may be a moment after the caller got its result.
    wait_for("23 outcomes in /metrics", lambda: sum(samples(port, "amqp_tasks_tasks_total").values()) == 23)
    assert total("demo.add", "succeeded") == 15
    assert total("demo.fail", "failed") == 5
    assert total("unknown", "rejected") == 3
    assert len(samples(port, "amqp_tasks_tasks_total")) == 3, "garbage names must share task=\"unknown\""
    runs = samples(port, "amqp_tasks_task_runtime_seconds_count")
    assert runs[frozenset({"task": "demo.add", "queue": queue}.items())] == 15
    assert runs[frozenset({"task": "demo.fail", "queue": queue}.items())] == 5
    in_progress = samples(port, "amqp_tasks_tasks_in_progress")
    assert in_progress[frozenset({"task": "demo.add", "queue": queue}.items())] == 0
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/nothing")[0] == 404


def worker_connections(hostname):
    out = broker("ctl", "list_connections", "pid", "client_properties", "--quiet", "--no-table-headers")
    return [line.split("\t")[0] for line in out.splitlines() if f"amqp-worker {hostname}" in line]


def test_healthz_is_503_while_the_connection_is_gone_and_200_after_the_reconnect(swift_worker, queue):
    port = free_port()
    hostname = f"metrics-{uuid.uuid4().hex[:8]}@interop"
    swift_worker("--metrics-port", str(port), hostname=hostname)
    wait_for("/healthz 200", lambda: get(port, "/healthz")[0] == 200)
    assert samples(port, "amqp_tasks_worker_reconnects_total") == {frozenset(): 0}

    # Watch /healthz from before the close, so the short time without a connection is seen, whatever its length.
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(get(port, "/healthz"))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        pids = worker_connections(hostname)
        assert len(pids) == 1, pids
        broker("ctl", "close_connection", pids[0], "metrics test: dropped the worker's connection")
        wait_for("a 503 from /healthz", lambda: any(status == 503 for status, _ in seen))
        wait_for("a reconnect", lambda: len(worker_connections(hostname)) == 1
                 and worker_connections(hostname) != pids)
        wait_for("/healthz 200 again", lambda: seen and seen[-1][0] == 200
                 and any(status == 503 for status, _ in seen))
    finally:
        stop.set()
        watcher.join()
    first_503 = next(index for index, (status, _) in enumerate(seen) if status == 503)
    assert "unhealthy" in seen[first_503][1]
    assert all(status == 200 for status, _ in seen[:first_503])
    assert samples(port, "amqp_tasks_worker_reconnects_total") == {frozenset(): 1}
    # Consuming again: a task runs.
    assert app.send_task("demo.add", args=[2, 2], queue=queue).get(timeout=60) == 4


def test_a_metrics_port_in_use_stops_the_worker_with_a_clear_error(queue):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--metrics-port", str(port)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"could not listen on 127.0.0.1:{port} for /metrics and /healthz" in result.stderr, result.stderr
    assert "choose another --metrics-port" in result.stderr


def test_metrics_options_are_checked():
    result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--metrics-host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "--metrics-host needs --metrics-port" in result.stderr, result.stderr
    result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--metrics-port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "--metrics-port must be a TCP port from 1 to 65535" in result.stderr, result.stderr
