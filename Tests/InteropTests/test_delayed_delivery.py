"""Delayed tasks through kombu's native delayed delivery (celery_delayed_0..27, celery_delayed_delivery), shared by
Celery 5.5+ and amqp-tasks: a Celery client's countdown run by Swift workers alone, a Swift client's countdown run
by a Celery worker, and the topology declared by either side first without a 406."""
import json
import os
import sys
import time
import uuid
from datetime import datetime

from celery import Celery
from kombu import Connection, Exchange, Queue
from kombu.transport.native_delayed_delivery import declare_native_delayed_delivery_exchanges_and_queues

from celeryapp import broker_url
from conftest import amqp_task, binary

PORT = os.environ.get("AMQP_BROKER_PORT", "5672")
TENANT_URL = f"amqp://tenant:tenant-password@127.0.0.1:{PORT}/amqp-tasks-tenant"


def topic_config(path, exchange, queue, key, route=None):
    """A configuration file: a topic exchange, and `queue` (quorum) bound to it with `key`."""
    routes = f'\n[routes]\n"{route[0]}" = {{ exchange = "{exchange}", routing_key = "{route[1]}" }}\n' if route else ""
    path.write_text(f"""
[[exchanges]]
name = "{exchange}"
type = "topic"

[[queues]]
name = "{queue}"
type = "quorum"
bindings = [{{ exchange = "{exchange}", routing_key = "{key}" }}]
{routes}""")
    return path


def parse_eta(text):
    return datetime.fromisoformat(text).timestamp()


def test_a_celery_countdown_to_a_quorum_queue_behind_a_topic_exchange_runs_on_swift_workers_once(processes, tmp_path):
    tag = uuid.uuid4().hex[:8]
    exchange, queue, key = f"interop.topic.{tag}", f"interop.delayed.{tag}", f"reports{tag}.#"
    config = topic_config(tmp_path / "topic.toml", exchange, queue, key)
    _, log = processes.start("w", [binary("amqp-worker"), "--config", str(config), "--demo-tasks", "--queue", queue,
                                   "--hostname", "delay@interop"], f"consuming {queue}")
    app = Celery("delayed", broker=broker_url(), backend="rpc://", set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    # Declared as the file declares it; a quorum queue is what turns on Celery's delayed delivery.
                    task_queues=[Queue(queue, Exchange(exchange, type="topic"), routing_key=key,
                                       queue_arguments={"x-queue-type": "quorum"})])
    sent = time.time()
    result = app.send_task("demo.when", queue=queue, countdown=3)
    answer = result.get(timeout=60)
    assert answer["eta"] is not None
    assert answer["started"] >= parse_eta(answer["eta"]), answer
    assert answer["started"] >= sent + 3, answer
    # Once: one delivery of it reached the worker, and nothing of it is left anywhere.
    assert log.read_text().count(f"task_id={result.id} [AMQPTasks] received") == 1, log.read_text()[-3000:]


def celery_app_module(path, queues):
    """A Celery app module for a worker consuming `queues` (kombu Queue source), besides celeryapp's tasks."""
    path.write_text(f"""
from kombu import Exchange, Queue
from celeryapp import app
app.conf.task_queues = {queues}
""")
    return path.stem


def start_celery_worker(processes, tmp_path, module, queue):
    return processes.start(
        "celery", [sys.executable, "-m", "celery", "-A", module, "worker", "-Q", queue, "-P", "prefork", "-c", "1",
                   "-n", f"celery-{queue}@interop", "--loglevel=INFO", "--without-gossip", "--without-mingle"],
        "ready.", env={"PYTHONPATH": f"{tmp_path}:{os.path.dirname(__file__)}"})


def test_a_swift_countdown_is_run_by_a_celery_worker_with_a_quorum_queue_behind_a_topic_exchange(processes, tmp_path):
    tag = uuid.uuid4().hex[:8]
    exchange, queue, key = f"interop.topic.{tag}", f"interop.celerydelayed.{tag}", f"jobs{tag}.#"
    module = celery_app_module(
        tmp_path / f"delayapp_{tag}.py",
        f'[Queue("{queue}", Exchange("{exchange}", type="topic"), routing_key="{key}", '
        f'queue_arguments={{"x-queue-type": "quorum"}})]')
    _, log = start_celery_worker(processes, tmp_path, module, queue)
    config = topic_config(tmp_path / "client.toml", exchange, queue, key, route=("py.now", f"jobs{tag}.now"))
    sent = time.time()
    status, out, err = amqp_task("send", "py.now", "--config", str(config), "--countdown", "3", "--wait",
                                 "--timeout", "60")
    assert status == 0, err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["result"] >= sent + 3, line
    assert log.read_text().count(f"Task py.now[{line['id']}] succeeded") == 1, log.read_text()[-3000:]


def test_a_swift_countdown_reaches_celerys_default_direct_queue_through_the_clients_own_binding(processes, tmp_path):
    """Celery's worker binds nothing for a queue behind a direct exchange (it warns); our client binds the queue to
    celery_delayed_delivery itself before its first delayed task, so the Celery worker still gets it, on time."""
    queue = f"interop.direct.{uuid.uuid4().hex[:8]}"
    module = celery_app_module(tmp_path / f"directapp_{queue.rsplit('.', 1)[1]}.py",
                               f'[Queue("{queue}", Exchange("{queue}", type="direct"), routing_key="{queue}")]')
    _, log = start_celery_worker(processes, tmp_path, module, queue)
    sent = time.time()
    status, out, err = amqp_task("send", "py.now", "--queue", queue, "--countdown", "2", "--wait", "--timeout", "60")
    assert status == 0, err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["result"] >= sent + 2, line


def delete_levels(url):
    with Connection(url) as connection:
        channel = connection.channel()
        for level in range(28):
            channel.queue_delete(f"celery_delayed_{level}")
            channel.exchange_delete(f"celery_delayed_{level}")
        channel.exchange_delete("celery_delayed_delivery")


def swift_declares(processes, name):
    """amqp-worker declares the levels at start (in the tenant vhost, so other tests keep theirs)."""
    queue = f"interop.order.{uuid.uuid4().hex[:8]}"
    process, log = processes.start(name, [binary("amqp-worker"), "--url", TENANT_URL, "--demo-tasks", "--queue", queue,
                                          "--hostname", f"{name}@interop"], f"consuming {queue}")
    process.terminate()
    process.wait(timeout=30)
    text = log.read_text()
    assert "PRECONDITION_FAILED" not in text, text
    return text


def test_the_delay_topology_is_declared_by_kombu_then_by_us_and_the_reverse_without_a_406(processes):
    delete_levels(TENANT_URL)
    with Connection(TENANT_URL) as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
    swift_declares(processes, "after-kombu")
    delete_levels(TENANT_URL)
    swift_declares(processes, "first")
    with Connection(TENANT_URL) as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")  # raises on a 406
    # Celery configured for classic levels, declared first: we use them as they are (and say so), no 406.
    delete_levels(TENANT_URL)
    with Connection(TENANT_URL) as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "classic")
    assert "exist as classic queues" in swift_declares(processes, "after-classic")
    with Connection(TENANT_URL) as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "classic")
    delete_levels(TENANT_URL)
