"""`celery control enable_events` / `disable_events` (and Flower, which sends enable_events every 5 s) switch a Swift
worker's events at run time, with the replies a Celery 5.7 worker gives."""
import time

import pytest

from celeryapp import app
from eventlog import EventLog


@pytest.fixture
def events():
    log = EventLog()
    yield log
    log.close()


def control(method, hostname):
    wait_for_remote_control(hostname)
    return getattr(app.control, method)(destination=[hostname], reply=True, timeout=20, limit=1)


def wait_for_remote_control(hostname, seconds=60):
    """Until the worker answers `ping`: it logs "consuming" just before its remote-control consumer starts, and a
    broadcast sent before that reaches no queue."""
    deadline = time.time() + seconds
    while not app.control.ping(destination=[hostname], timeout=1):
        assert time.time() < deadline, f"{hostname} never answered ping"


def test_a_worker_started_without_events_turns_them_on_and_off_when_asked(swift_worker, queue, events):
    hostname = "swift-events-switch@interop"
    swift_worker("--remote-control", "all", hostname=hostname)
    quiet = app.send_task("demo.add", args=[1, 1], queue=queue)
    assert quiet.get(timeout=20) == 2

    assert control("enable_events", hostname) == [{hostname: {"ok": "task events enabled"}}]
    events.wait_for("worker-online", lambda e: e["type"] == "worker-online" and e["hostname"] == hostname)
    assert control("enable_events", hostname) == [{hostname: {"ok": "task events already enabled"}}]
    on = app.send_task("demo.add", args=[2, 2], queue=queue)
    assert on.get(timeout=20) == 4
    events.wait_for("task-succeeded of the task sent with events on",
                    lambda e: e["type"] == "task-succeeded" and e.get("uuid") == on.id)
    events.wait_for("a worker-heartbeat", lambda e: e["type"] == "worker-heartbeat" and e["hostname"] == hostname)

    assert control("disable_events", hostname) == [{hostname: {"ok": "task events disabled"}}]
    assert control("disable_events", hostname) == [{hostname: {"ok": "task events already disabled"}}]
    off = app.send_task("demo.add", args=[3, 3], queue=queue)
    assert off.get(timeout=20) == 6
    # One consumer runs tasks one after the other and every event goes out on one channel, so once the next task's
    # task-succeeded arrived, any event about `off` would have arrived before it.
    assert control("enable_events", hostname) == [{hostname: {"ok": "task events enabled"}}]
    after = app.send_task("demo.add", args=[4, 4], queue=queue)
    assert after.get(timeout=20) == 8
    events.wait_for("task-succeeded of the task sent after events came on again",
                    lambda e: e["type"] == "task-succeeded" and e.get("uuid") == after.id)

    assert events.of_task(on.id) == ["task-received", "task-started", "task-succeeded"]
    assert events.of_task(quiet.id) == [], "no task events before enable_events"
    assert events.of_task(off.id) == [], "no task events after disable_events"
    # worker-online only once: disable_events leaves worker events (heartbeats) on, as on a Celery worker.
    onlines = [e for e in events.seen if e["type"] == "worker-online" and e["hostname"] == hostname]
    assert len(onlines) == 1


def test_a_worker_started_with_events_says_they_are_on_already(swift_worker, queue, events):
    hostname = "swift-events-on@interop"
    swift_worker("--events", "--remote-control", "all", hostname=hostname)
    assert control("enable_events", hostname) == [{hostname: {"ok": "task events already enabled"}}]
    # Celery 5.7's own -E worker answers "already disabled" here and goes on sending; ours turns them off.
    assert control("disable_events", hostname) == [{hostname: {"ok": "task events disabled"}}]


def test_a_worker_on_the_default_access_turns_on_events_without_task_data(swift_worker, queue, events):
    hostname = "swift-events-standard@interop"
    _, log = swift_worker(hostname=hostname)
    assert control("enable_events", hostname) == [{hostname: {"ok": "task events enabled"}}]
    events.wait_for("worker-online", lambda e: e["type"] == "worker-online" and e["hostname"] == hostname)
    succeeded = app.send_task("demo.add", args=[20, 22], queue=queue)
    assert succeeded.get(timeout=20) == 42
    failed = app.send_task("demo.fail", args=["secret message"], queue=queue)
    with pytest.raises(Exception):
        failed.get(timeout=20)
    events.wait_for("task-failed", lambda e: e["type"] == "task-failed" and e.get("uuid") == failed.id)
    received = events.wait_for("the event", lambda e: e["type"] == "task-received" and e.get("uuid") == succeeded.id)
    assert received["name"] == "demo.add"
    assert (received["args"], received["kwargs"]) == ("<hidden>", "<hidden>"), received
    done = events.wait_for("the event", lambda e: e["type"] == "task-succeeded" and e.get("uuid") == succeeded.id)
    assert done["result"] == "<hidden>" and done["runtime"] >= 0, done
    failure = events.wait_for("the event", lambda e: e["type"] == "task-failed" and e.get("uuid") == failed.id)
    assert "secret message" not in str(failure), failure
    assert failure["exception"].startswith("ValueError("), failure

    # What stops or reshapes the worker is refused, with an answer.
    [reply] = app.control.broadcast("shutdown", destination=[hostname], reply=True, timeout=20, limit=1)
    assert "remote_control = \"full\"" in reply[hostname]["error"], reply
    assert "refused remote-control shutdown" in log.read_text()
