"""Every bad message we know of, sent by a plain AMQP client (kombu/py-amqp, as any user of the vhost could), to a
queue served by two Swift workers at once. Afterwards both workers are alive with all their consumers and answer
remote control, a normal task is answered, each bad message is in `<queue>.dead` exactly once with its reason (and
answered with FAILURE where it can be), and nothing is left in flight or looping."""
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import kombu
import pytest

from celeryapp import app, broker_url
from conftest import REPO, binary

BROKER = REPO / "Deploy" / "broker"
CONCURRENCY = 2
MAX_MESSAGE_SIZE = 65536


def ctl(*args):
    result = subprocess.run([str(BROKER), "ctl", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def queue_row(queue):
    """(consumers, ready, unacked) of `queue`."""
    for line in ctl("list_queues", "name", "consumers", "messages_ready", "messages_unacknowledged",
                    "--quiet", "--no-table-headers").splitlines():
        fields = line.split("\t")
        if fields[0] == queue:
            return tuple(int(f) for f in fields[1:])
    return None


def wait_until(what, condition, seconds=120, explain=lambda: ""):
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"timed out waiting until {what}; {explain()}")
        time.sleep(0.1)


def task_headers(task="demo.add", task_id=None, **extra):
    headers = {"lang": "py", "task": task, "id": task_id or str(uuid.uuid4()), "shadow": None, "eta": None,
               "expires": None, "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
               "root_id": None, "parent_id": None, "argsrepr": "()", "kwargsrepr": "{}", "origin": "bad@inputs",
               "ignore_result": False}
    headers.update(extra)
    return headers


def body(args=(2, 3), embed=None):
    return json.dumps([list(args), {}, embed or {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])


def deeply_nested(levels):
    value = []
    for _ in range(levels):
        value = [value]
    return value


class Case:
    def __init__(self, name, *, reason=None, answer=None, headers=None, payload=None, content_type="application/json",
                 content_encoding="utf-8", correlation_id=True):
        self.name = name
        self.reason = reason          # expected x-amqp-tasks-reason in <queue>.dead, or None: not dead-lettered
        self.answer = answer          # expected status of the result message, or None: no result expected
        self.headers = dict(headers if headers is not None else task_headers())
        self.headers["x-test-case"] = name
        self.payload = payload if payload is not None else body()
        self.content_type = content_type
        self.content_encoding = content_encoding
        task_id = self.headers.get("id")
        self.correlation_id = task_id if correlation_id and isinstance(task_id, str) and len(task_id) <= 255 else None


def cases():
    arabic = "٢٠٢٦-١١-٢٥T15:22:28+00:00"
    missing_queue = f"no.such.queue.{uuid.uuid4().hex}"
    return [
        Case("eta-arabic-digits", reason="invalid-header", answer="FAILURE", headers=task_headers(eta=arabic)),
        Case("expires-arabic-digits", reason="invalid-header", answer="FAILURE", headers=task_headers(expires=arabic)),
        Case("timelimit-1e30", answer="SUCCESS", headers=task_headers(timelimit=[1e30, None])),
        # (An infinite or NaN double in a header never reaches a worker: RabbitMQ 3.10 closes the publisher's
        # connection with 541 INTERNAL_ERROR. The decoder's refusal of them is a unit test, BadInputTests.)
        Case("timelimit-negative", reason="invalid-header", answer="FAILURE",
             headers=task_headers(timelimit=[-1.5, None])),
        Case("timelimit-not-a-list", reason="invalid-header", answer="FAILURE", headers=task_headers(timelimit="30")),
        Case("retries-negative", reason="invalid-header", answer="FAILURE", headers=task_headers(retries=-1)),
        Case("retries-huge", reason="invalid-header", answer="FAILURE", headers=task_headers(retries=2 ** 40)),
        Case("id-300-bytes", reason="invalid-header", headers=task_headers(task_id="x" * 300)),
        Case("headers-20000-deep", reason="malformed-headers", headers=task_headers(deep=deeply_nested(20000))),
        Case("link-to-missing-queue", reason="outcome-not-recorded", answer="SUCCESS",
             payload=body(embed={"callbacks": [{"task": "demo.add", "args": [1], "kwargs": {},
                                                "options": {"queue": missing_queue}, "subtask_type": None,
                                                "immutable": False}],
                                 "errbacks": None, "chain": None, "chord": None})),
        Case("link-queue-300-bytes", reason="outcome-not-recorded", answer="SUCCESS",
             payload=body(embed={"callbacks": [{"task": "demo.add", "args": [1], "kwargs": {},
                                                "options": {"queue": "q" * 300}, "subtask_type": None,
                                                "immutable": False}],
                                 "errbacks": None, "chain": None, "chord": None})),
        Case("celery-compression", reason="unsupported-content-type", answer="FAILURE",
             headers=task_headers(compression="application/x-gzip")),
        Case("content-encoding-latin-1", reason="unsupported-content-type", answer="FAILURE",
             content_encoding="latin-1"),
        Case("json-with-charset", answer="SUCCESS", content_type="application/json; charset=utf-8"),
        Case("pickle", reason="unsupported-content-type", answer="FAILURE",
             content_type="application/x-python-serialize", payload="\x80\x04K\x01."),
        Case("garbage-json", reason="invalid-json", answer="FAILURE", payload="{this is not json"),
        Case("body-not-a-list", reason="invalid-body", answer="FAILURE", payload="[1, 2]"),
        Case("protocol-1-body", reason="not-a-task-message", headers={},
             payload=json.dumps({"task": "demo.add", "id": str(uuid.uuid4()), "args": [2, 3], "kwargs": {}})),
        Case("task-not-a-string", reason="not-a-task-message", headers=task_headers(task=5)),
        Case("id-not-a-string", reason="not-a-task-message", headers=task_headers(task_id=7), correlation_id=False),
        Case("unknown-task", reason="unknown-task", answer="FAILURE", headers=task_headers(task="no.such.task")),
        Case("body-over-max-message-size", reason="message-too-large", answer="FAILURE",
             payload=body(args=["a" * (MAX_MESSAGE_SIZE + 1), "b"])),
    ]


def publish_all(connection, queue, replies, items):
    producer = kombu.Producer(connection.channel())
    for case in items:
        producer.publish(case.payload, routing_key=queue, headers=case.headers, content_type=case.content_type,
                         content_encoding=case.content_encoding, correlation_id=case.correlation_id, reply_to=replies,
                         delivery_mode=2)


def publish_deep(queue, replies, case):
    """py-amqp writes nested tables recursively: give it the stack and recursion depth 20,000 levels need."""
    failure = []

    def run():
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(200_000)
        try:
            with kombu.Connection(broker_url()) as connection:
                publish_all(connection, queue, replies, [case])
        except Exception as error:  # reported below
            failure.append(error)
        finally:
            sys.setrecursionlimit(limit)

    threading.stack_size(512 * 1024 * 1024)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(120)
    finally:
        threading.stack_size(0)
    assert not failure, failure


def send_remote_control_abuse(connection):
    """Remote-control messages any user of the vhost can send: a Lamport clock at 2^63-1, and a reply to an exchange
    that does not exist (which used to close the pidbox channel)."""
    producer = kombu.Producer(connection.channel())
    request = {"method": "ping", "arguments": {}, "destination": None, "pattern": None, "matcher": None,
               "reply_to": {"exchange": f"no.such.exchange.{uuid.uuid4().hex}", "routing_key": "x" * 200},
               "ticket": str(uuid.uuid4())}
    producer.publish(json.dumps(request), exchange="celery.pidbox", routing_key="", content_type="application/json",
                     content_encoding="utf-8", headers={"clock": 2 ** 63 - 1})


def drain(channel, queue_name):
    """Every message now in `queue_name`, taken off it: (headers, properties, body) each."""
    taken = []
    while True:
        message = channel.basic_get(queue_name, no_ack=True)
        if message is None:
            return taken
        taken.append((message.headers or {}, message.properties, message.body))


def test_no_single_message_stops_a_worker(processes, queue, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f"[worker]\nmax_message_size = {MAX_MESSAGE_SIZE}\n")
    hostnames = [f"bad{n}-{uuid.uuid4().hex[:6]}@inputs" for n in range(2)]
    workers = [
        processes.start(f"worker{n}", [binary("amqp-worker"), "--config", str(config), "--demo-tasks",
                                       "--queue", queue, "--concurrency", str(CONCURRENCY), "--hostname", hostname],
                        f"consuming {queue}")[0]
        for n, hostname in enumerate(hostnames)
    ]
    replies = f"{queue}.replies"
    items = cases()
    with kombu.Connection(broker_url()) as connection:
        channel = connection.channel()
        channel.queue_declare(replies, durable=True, auto_delete=False)
        send_remote_control_abuse(connection)
        deep = [case for case in items if case.name == "headers-20000-deep"]
        publish_all(connection, queue, replies, [case for case in items if case not in deep])
        publish_deep(queue, replies, deep[0])
        # A normal task sent after all of them.
        normal = Case("normal-after-all", answer="SUCCESS")
        publish_all(connection, queue, replies, [normal])
        items.append(normal)

        expected_dead = {case.name: case.reason for case in items if case.reason}
        dead = {}
        results = {}

        reader = connection.channel()

        def settled():
            for headers, properties, _ in drain(reader, f"{queue}.dead"):
                name = headers.get("x-test-case")
                dead.setdefault(name, []).append(headers.get("x-amqp-tasks-reason"))
            for headers, properties, payload in drain(reader, replies):
                results.setdefault(properties.get("correlation_id"), []).append(json.loads(payload)["status"])
            answered = all(results.get(case.correlation_id) for case in items if case.answer)
            return answered and set(dead) >= set(expected_dead)

        def explain():
            unanswered = [case.name for case in items if case.answer and not results.get(case.correlation_id)]
            return (f"not dead-lettered: {sorted(set(expected_dead) - set(dead))}; unanswered: {unanswered}; "
                    f"queue (consumers, ready, unacked): {queue_row(queue)}; "
                    f"workers alive: {[worker.poll() is None for worker in workers]}")

        wait_until("every bad message is dead-lettered or answered", settled, explain=explain)
        # Both workers are up, with all their consumers, and answer remote control.
        for worker, hostname in zip(workers, hostnames):
            assert worker.poll() is None, f"{hostname} exited with {worker.returncode}"
        wait_until("nothing is in flight", lambda: queue_row(queue) == (2 * CONCURRENCY, 0, 0))
        replies_by_worker = app.control.ping(destination=hostnames, timeout=10)
        assert {name for reply in replies_by_worker for name in reply} == set(hostnames), replies_by_worker

        # Each bad message is in <queue>.dead exactly once, with its reason; nothing else is there.
        assert {name: reasons for name, reasons in dead.items()} == {
            name: [reason] for name, reason in expected_dead.items()}
        for case in items:
            if case.answer and case.correlation_id:
                statuses = results[case.correlation_id]
                assert statuses[0] == case.answer, (case.name, statuses)
        # Nothing loops: a second marker sent now is answered (a requeued bad message would be redelivered ahead of
        # it), and by then nothing new reached <queue>.dead and nothing is in flight.
        marker = Case("second-marker", answer="SUCCESS")
        publish_all(connection, queue, replies, [marker])
        wait_until("the second marker is answered", lambda: (settled(), bool(results.get(marker.correlation_id)))[1])
        settled()
        assert {name: len(reasons) for name, reasons in dead.items()} == {name: 1 for name in expected_dead}
        assert queue_row(queue) == (2 * CONCURRENCY, 0, 0)
        channel.queue_delete(replies)
        channel.queue_delete(f"{queue}.dead")
        channel.exchange_delete(f"{queue}.dead")
        channel.queue_delete(queue)
