"""Celery's remote-control commands that reshape a worker — pool_grow, pool_shrink, add_consumer, cancel_consumer,
autoscale — sent to Swift workers with Celery 5.7's own command line and API: obeyed under `--remote-control full`
with Celery's replies, refused with an error reply below it, and a bad argument never costs the worker a consumer.

Concurrency is proven without timing: `rendezvous_task.py` tasks wait for each other (a barrier) or for a gate the
test opens, and the broker's own consumer counts say how many consumers a queue has."""
import json
import pathlib
import sys
import uuid

import pytest

from celeryapp import app
from conftest import broker
from test_metrics import wait_for, worker_connections
from test_monitoring import celery_cli
from test_remote_control import wait_for_remote_control

RENDEZVOUS = str(pathlib.Path(__file__).parent / "rendezvous_task.py")
EXEC = ["--exec", f"interop.rendezvous={sys.executable} {RENDEZVOUS}"]


def control(hostname, *args):
    """`celery control ARGS -d HOSTNAME --json`: the worker's reply."""
    status, out = celery_cli("control", *args, "-d", hostname, "--json", "--timeout", "20")
    replies = json.loads(out.strip().splitlines()[-1])
    assert len(replies) == 1, out
    return replies[0][hostname]


def broadcast(hostname, command, **arguments):
    """A raw Celery broadcast (what a script or an old client may send), with the worker's reply."""
    replies = app.control.broadcast(command, arguments=arguments, destination=[hostname], reply=True, timeout=10)
    assert len(replies) == 1, replies
    return replies[0][hostname]


def consumers_of(queue):
    """(ready messages, consumers) of `queue`, as the broker counts them (a passive declare)."""
    with app.connection_for_write() as connection:
        _, ready, consumers = connection.default_channel.queue_declare(queue, passive=True)
        return ready, consumers


def declare(queue, durable=True):
    with app.connection_for_write() as connection:
        connection.default_channel.queue_declare(queue, durable=durable, auto_delete=False)


def delete(*queues):
    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_delete(queue)
            connection.default_channel.queue_delete(f"{queue}.dead")


def stats(hostname):
    return app.control.inspect(destination=[hostname], timeout=5).stats()[hostname]


def active_queue_names(hostname):
    return [entry["name"] for entry in app.control.inspect(destination=[hostname], timeout=5).active_queues()[hostname]]


def active_ids(hostname):
    return {task["id"] for task in (app.control.inspect(destination=[hostname], timeout=2).active() or {}).get(hostname, [])}


def rendezvous(queue, directory, name, parties):
    return app.send_task("interop.rendezvous", args=[str(directory), name, parties], queue=queue)


def test_pool_grow_runs_a_second_task_beside_the_first_and_pool_shrink_lets_running_tasks_finish(
        swift_worker, queue, tmp_path):
    hostname = f"pool-{uuid.uuid4().hex[:6]}@interop"
    swift_worker("--remote-control", "full", *EXEC, hostname=hostname)
    wait_for_remote_control(hostname)
    assert stats(hostname)["concurrency"] == 1
    # Two tasks that each wait for the other: with one consumer, the second waits in the queue.
    barrier = tmp_path / "barrier"
    first = rendezvous(queue, barrier, "first", 2)
    wait_for("the first task to run", lambda: first.id in active_ids(hostname))
    second = rendezvous(queue, barrier, "second", 2)
    wait_for("the second task to wait in the queue", lambda: consumers_of(queue) == (1, 1))

    assert control(hostname, "pool_grow", "1") == {"ok": "pool will grow"}
    assert first.get(timeout=60) == {"name": "first", "present": ["first", "second"]}
    assert second.get(timeout=60) == {"name": "second", "present": ["first", "second"]}
    assert consumers_of(queue) == (0, 2)
    assert stats(hostname)["pool"]["max-concurrency"] == 2
    assert app.control.inspect(destination=[hostname], timeout=5).conf()[hostname]["worker_concurrency"] == 2

    # Both consumers busy, then one fewer: the retiring one finishes its task, recorded once, before it goes.
    gate = tmp_path / "gate"
    held = [rendezvous(queue, gate, f"held{i}", 0) for i in range(2)]
    wait_for("both held tasks to run", lambda: {task.id for task in held} <= active_ids(hostname))
    assert control(hostname, "pool_shrink", "1") == {"ok": "pool will shrink"}
    assert stats(hostname)["concurrency"] == 1
    (gate / "open").write_text("")
    assert [task.get(timeout=60)["name"] for task in held] == ["held0", "held1"]
    # The retired consumer ended (stats counts a retiring one until then): one consumer left, as the broker counts.
    wait_for("the retired consumer to end", lambda: stats(hostname)["consumers"] == {queue: 1})
    assert consumers_of(queue) == (0, 1)
    assert app.send_task("demo.add", args=[2, 3], queue=queue).get(timeout=30) == 5
    assert consumers_of(f"{queue}.dead") == (0, 0), "nothing was dead-lettered"


def test_add_consumer_and_cancel_consumer_change_what_the_worker_consumes_and_survive_a_reconnect(
        swift_worker, queue):
    hostname = f"consumers-{uuid.uuid4().hex[:6]}@interop"
    extra, routed = f"{queue}.extra", f"{queue}.routed"
    declare(extra)
    try:
        swift_worker("--remote-control", "full", hostname=hostname)
        wait_for_remote_control(hostname)
        assert control(hostname, "add_consumer", extra) == {"ok": f"add consumer {extra}"}
        assert active_queue_names(hostname) == [queue, extra]
        assert app.send_task("demo.add", args=[1, 2], queue=extra).get(timeout=30) == 3

        # With an exchange, declared as Celery's worker declares it: a topic exchange and a binding.
        exchange = f"{queue}.topic"
        assert control(hostname, "add_consumer", routed, exchange, "topic", "jobs.#") == {"ok": f"add consumer {routed}"}
        entry = app.control.inspect(destination=[hostname], timeout=5).active_queues()[hostname][-1]
        assert (entry["name"], entry["exchange"]["name"], entry["exchange"]["type"], entry["routing_key"]) == (
            routed, exchange, "topic", "jobs.#")
        assert app.send_task("demo.add", args=[4, 5], exchange=exchange, routing_key="jobs.a").get(timeout=30) == 9

        assert control(hostname, "cancel_consumer", extra) == {"ok": f"no longer consuming from {extra}"}
        wait_for(f"no consumer on {extra}", lambda: consumers_of(extra)[1] == 0)
        assert active_queue_names(hostname) == [queue, routed]
        parked = app.send_task("demo.add", args=[10, 1], queue=extra)
        wait_for(f"the task to wait in {extra}", lambda: consumers_of(extra) == (1, 0))

        # A reconnect keeps the run-time set: extra stays cancelled, routed stays consumed.
        [connection] = worker_connections(hostname)
        broker("ctl", "close_connection", connection, "pool test: dropped the worker's connection")
        wait_for("a reconnect", lambda: worker_connections(hostname) not in ([], [connection]))
        wait_for("consumers after the reconnect", lambda: consumers_of(routed)[1] == 1 and consumers_of(queue)[1] == 1)
        assert consumers_of(extra) == (1, 0)
        wait_for_remote_control(hostname)
        assert active_queue_names(hostname) == [queue, routed]
        assert app.send_task("demo.add", args=[6, 7], exchange=exchange, routing_key="jobs.b").get(timeout=30) == 13

        # Added again, the parked task runs.
        assert control(hostname, "add_consumer", extra) == {"ok": f"add consumer {extra}"}
        assert parked.get(timeout=30) == 11
        # The only queue left cannot be cancelled; a queue that does not exist is not consumed.
        assert control(hostname, "cancel_consumer", routed) == {"ok": f"no longer consuming from {routed}"}
        assert control(hostname, "cancel_consumer", extra) == {"ok": f"no longer consuming from {extra}"}
        assert "the only queue" in control(hostname, "cancel_consumer", queue)["error"]
        missing = control(hostname, "add_consumer", f"{queue}.nosuch")
        assert "does not exist" in missing["error"], missing
        assert active_queue_names(hostname) == [queue]
        assert app.send_task("demo.add", args=[1, 1], queue=queue).get(timeout=30) == 2
    finally:
        delete(extra, routed, f"{queue}.nosuch")


def test_autoscale_grows_under_a_backlog_and_shrinks_back_when_idle(swift_worker, queue, tmp_path):
    hostname = f"autoscale-{uuid.uuid4().hex[:6]}@interop"
    config = tmp_path / "amqp-tasks.toml"
    config.write_text('[worker]\nautoscale = "3,1"\nautoscale_keepalive = 1\n')
    swift_worker("--config", str(config), "--remote-control", "full", *EXEC, hostname=hostname)
    wait_for_remote_control(hostname)
    assert stats(hostname)["autoscaler"] == {"max": 3, "min": 1, "current": 1}
    wait_for("the worker's consumer", lambda: consumers_of(queue) == (0, 1))
    assert "not supported with autoscale" in control(hostname, "pool_grow", "1")["error"]
    # Three tasks that all wait for each other finish only if the worker grew to three consumers.
    barrier = tmp_path / "barrier"
    tasks = [rendezvous(queue, barrier, f"t{i}", 3) for i in range(3)]
    assert [task.get(timeout=90)["present"] for task in tasks] == [["t0", "t1", "t2"]] * 3
    wait_for("autoscale to shrink back to one consumer", lambda: stats(hostname)["consumers"] == {queue: 1},
             seconds=90)
    assert stats(hostname)["autoscaler"]["current"] == 1
    assert consumers_of(queue) == (0, 1)

    assert control(hostname, "autoscale", "2", "2") == {"ok": "autoscale now max=2 min=2"}
    wait_for("two consumers (the new minimum)", lambda: consumers_of(queue) == (0, 2))
    assert "must not be below the minimum" in control(hostname, "autoscale", "1", "2")["error"]
    assert control(hostname, "autoscale", "2", "1") == {"ok": "autoscale now max=2 min=1"}


def test_autoscale_from_the_command_line_and_turned_on_by_remote_control(swift_worker, queue):
    hostname = f"autoscale-cli-{uuid.uuid4().hex[:6]}@interop"
    process, log = swift_worker("--autoscale", "4,2", "--remote-control", "full", hostname=hostname)
    wait_for_remote_control(hostname)
    assert stats(hostname)["autoscaler"] == {"max": 4, "min": 2, "current": 2}
    assert "(autoscale 2 to 4)" in log.read_text()
    process.terminate()
    assert process.wait(timeout=30) == 0
    # A worker started without it turns autoscale on when told (a Celery worker needs --autoscale for that).
    other = f"autoscale-on-{uuid.uuid4().hex[:6]}@interop"
    swift_worker("--remote-control", "full", hostname=other)
    wait_for_remote_control(other)
    assert "autoscaler" not in stats(other)
    assert "Autoscale not enabled" in broadcast(other, "autoscale", min=2)["error"]
    assert control(other, "autoscale", "3", "2") == {"ok": "autoscale now max=3 min=2"}
    wait_for("the minimum of two consumers", lambda: consumers_of(queue) == (0, 2))


@pytest.mark.parametrize("command,args", [
    ("pool_grow", ["1"]), ("pool_shrink", ["1"]), ("autoscale", ["2", "1"]), ("add_consumer", ["other"]),
    ("cancel_consumer", ["other"]), ("pool_restart", []),
])
def test_each_reshaping_command_is_refused_by_default_with_an_error_reply(swift_worker, queue, command, args):
    hostname = f"refuses-{command}-{uuid.uuid4().hex[:6]}@interop"
    _, log = swift_worker(hostname=hostname)
    wait_for_remote_control(hostname)
    wait_for("the worker's consumer", lambda: consumers_of(queue) == (0, 1))
    reply = control(hostname, command, *args)
    assert 'remote_control = "full"' in reply["error"], reply
    assert f"refused remote-control {command}" in log.read_text()
    assert consumers_of(queue) == (0, 1)
    assert active_queue_names(hostname) == [queue]


def test_pool_restart_is_not_supported_and_says_why(swift_worker, queue):
    hostname = f"restart-{uuid.uuid4().hex[:6]}@interop"
    swift_worker("--remote-control", "full", hostname=hostname)
    wait_for_remote_control(hostname)
    reply = broadcast(hostname, "pool_restart")
    assert "no pool processes to restart" in reply["error"], reply


def test_malformed_arguments_get_an_error_reply_and_the_worker_keeps_its_consumers(swift_worker, queue):
    hostname = f"malformed-{uuid.uuid4().hex[:6]}@interop"
    lowered = f"{queue}.transient"
    declare(lowered, durable=False)
    try:
        swift_worker("--remote-control", "full", hostname=hostname)
        wait_for_remote_control(hostname)
        wait_for("the worker's consumer", lambda: consumers_of(queue) == (0, 1))
        bad = [
            ("pool_grow", {"n": -1}, "expected a whole number"),
            ("pool_grow", {"n": "two"}, "expected a whole number"),
            ("pool_grow", {"n": 1.5}, "expected a whole number"),
            ("pool_grow", {"n": 1000}, "expected a whole number from 1 to 64"),
            ("pool_grow", {"n": 64}, "may have at most 64"),
            ("pool_shrink", {"n": 0}, "expected a whole number"),
            ("pool_shrink", {"n": 1}, "keeps at least 1"),
            ("autoscale", {"max": "many"}, "expected a whole number"),
            ("autoscale", {"max": 2, "min": 0}, "expected a whole number"),
            ("add_consumer", {}, "needs a queue name"),
            ("add_consumer", {"queue": 7}, "needs a queue name"),
            ("add_consumer", {"queue": "q" * 300}, "1 to 255 bytes, got 300"),
            ("add_consumer", {"queue": "other", "colour": "blue"}, "unknown option colour"),
            ("add_consumer", {"queue": "other", "exchange": "x", "exchange_type": "bogus"}, "exchange_type must be"),
            ("add_consumer", {"queue": "other", "routing_key": "k"}, "needs an exchange"),
            ("add_consumer", {"queue": f"{hostname}.celery.pidbox"}, "not a task queue"),
            # The broker refuses: an amq.* exchange (403), a queue that exists with other properties (406).
            ("add_consumer", {"queue": "other", "exchange": "amq.mine"}, "ACCESS_REFUSED"),
            ("add_consumer", {"queue": lowered, "exchange": f"{queue}.x"}, "PRECONDITION_FAILED"),
            ("cancel_consumer", {}, "needs a queue name"),
            ("cancel_consumer", {"queue": queue, "extra": 1}, "takes only queue"),
            ("cancel_consumer", {"queue": queue}, "the only queue"),
        ]
        for command, arguments, expected in bad:
            reply = broadcast(hostname, command, **arguments)
            assert expected in reply.get("error", ""), (command, arguments, reply)
        assert active_queue_names(hostname) == [queue]
        assert stats(hostname)["concurrency"] == 1
        assert consumers_of(queue) == (0, 1)
        assert app.send_task("demo.add", args=[20, 22], queue=queue).get(timeout=30) == 42
    finally:
        delete(lowered, "other")
        with app.connection_for_write() as connection:
            connection.default_channel.exchange_delete(f"{queue}.x")


def test_a_bad_autoscale_on_the_command_line_stops_amqp_worker_with_a_clear_error():
    from conftest import binary
    import subprocess
    for value, expected in [("100,1", "above [worker] max_concurrency (64)"), ("2,3", "must not be below the minimum"),
                            ("many", "MAX,MIN")]:
        result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--autoscale", value], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0, result
        assert expected in result.stderr, (value, result.stderr)
