"""Swift workers seen by Celery's tools: events (-E) and remote control (celery inspect / control)."""
import json
import select
import subprocess
import sys
import threading
import time
import uuid

from celeryapp import app
from conftest import REPO, amqp_task

CAPTURES = REPO / "Tests" / "Fixtures" / "celery"  # made by its make-captures from a real Celery 5.7


def celery_cli(*args):
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "celeryapp", *args],
                            capture_output=True, text=True, timeout=60, cwd=__import__("pathlib").Path(__file__).parent)
    return result.returncode, result.stdout + result.stderr


class EventLog:
    """Celery's own EventReceiver (what Flower uses), collecting every event in a thread."""

    def __init__(self):
        self.events = []
        self.connection = app.connection()
        self.receiver = app.events.Receiver(self.connection, handlers={"*": self.events.append})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        # Ready once it receives an event of ours: until then the receiver's queue may not be bound yet.
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        with app.events.default_dispatcher() as dispatcher:
            deadline = time.time() + 20
            while not any(e.get("type") == probe for e in list(self.events)):
                if time.time() > deadline:
                    raise AssertionError("Celery's event receiver never received our probe event")
                dispatcher.send(probe)
                time.sleep(0.2)

    def _run(self):
        try:
            self.receiver.capture(limit=None, timeout=None, wakeup=False)
        except Exception:
            pass

    def wait_for(self, predicate, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = [e for e in list(self.events) if predicate(e)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no such event; got types {[e.get('type') for e in self.events]}")

    def close(self):
        self.receiver.should_stop = True
        self.connection.release()


def test_swift_worker_events_are_received_by_celery(swift_worker, queue, processes):
    log = EventLog()
    try:
        process, _ = swift_worker("--events", hostname="evented@interop")
        online = log.wait_for(lambda e: e["type"] == "worker-online" and e["hostname"] == "evented@interop")
        assert online["sw_ident"] == "amqp-tasks" and len(online["loadavg"]) == 3
        result = app.send_task("demo.add", args=[2, 3], queue=queue)
        assert result.get(timeout=20) == 5
        received = log.wait_for(lambda e: e["type"] == "task-received" and e.get("uuid") == result.id)
        assert received["name"] == "demo.add" and received["args"] == "[2, 3]", "the argsrepr the client sent"
        log.wait_for(lambda e: e["type"] == "task-started" and e.get("uuid") == result.id)
        succeeded = log.wait_for(lambda e: e["type"] == "task-succeeded" and e.get("uuid") == result.id)
        assert succeeded["result"] == "5" and succeeded["runtime"] >= 0
        failed = app.send_task("demo.fail", args=["bad value"], queue=queue)
        log.wait_for(lambda e: e["type"] == "task-failed" and e.get("uuid") == failed.id)
        heartbeat = log.wait_for(lambda e: e["type"] == "worker-heartbeat" and e["hostname"] == "evented@interop")
        assert heartbeat["freq"] == 2.0 and heartbeat["processed"] >= 1
        process.terminate()
        process.wait(timeout=30)
        log.wait_for(lambda e: e["type"] == "worker-offline" and e["hostname"] == "evented@interop")
        # Every field real Celery 5.7 put in each event type (Tests/Fixtures/celery/event_messages.json) is in ours too.
        captured = {}
        for message in json.loads(CAPTURES.joinpath("event_messages.json").read_text())["messages"]:
            body = message["body"]
            for event in body if isinstance(body, list) else [body]:
                captured.setdefault(event["type"], set()).update(event)
        ours = {}
        for event in log.events:
            if event.get("hostname") == "evented@interop":
                ours.setdefault(event["type"], set()).update(event)
        compared = [t for t in ours if t in captured]
        assert {"worker-online", "worker-heartbeat", "worker-offline", "task-received", "task-started", "task-succeeded",
                "task-failed"} <= set(compared)
        for event_type in compared:
            assert captured[event_type] <= ours[event_type], (event_type, captured[event_type] - ours[event_type])
    finally:
        log.close()


def test_celery_inspect_reaches_swift_workers(swift_worker, queue):
    swift_worker(hostname="inspected@interop")
    status, out = celery_cli("inspect", "ping", "-d", "inspected@interop", "--json")
    assert status == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {"inspected@interop": {"ok": "pong"}}
    status, out = celery_cli("inspect", "registered", "-d", "inspected@interop", "--json")
    assert "demo.add" in json.loads(out.strip().splitlines()[-1])["inspected@interop"]
    running = app.send_task("demo.sleep", args=[3], queue=queue)
    active = wait_until_active("inspected@interop", running.id)
    assert [task["id"] for task in active] == [running.id]
    status, out = celery_cli("inspect", "stats", "-d", "inspected@interop", "--json")
    assert json.loads(out.strip().splitlines()[-1])["inspected@interop"]["pid"] > 0
    assert running.get(timeout=20) == 3.0


def test_celery_control_revoke_stops_a_swift_task(swift_worker, queue):
    swift_worker("--remote-control", "all", hostname="revoker@interop")
    blocker = app.send_task("demo.sleep", args=[5], queue=queue)
    waiting = app.send_task("demo.add", args=[1, 1], queue=queue)
    wait_until_active("revoker@interop", blocker.id)
    # reply=True returns once the worker has taken the revoke in, while the blocker still holds its one slot.
    replies = app.control.revoke(waiting.id, destination=["revoker@interop"], reply=True, timeout=5)
    assert replies and "revoker@interop" in replies[0], replies
    assert blocker.get(timeout=20) == 5.0
    try:
        waiting.get(timeout=20)
        raise AssertionError("a revoked task must not run")
    except Exception as error:
        assert type(error).__name__ == "TaskRevokedError"
    running = app.send_task("demo.sleep", args=[30], queue=queue)
    wait_until_active("revoker@interop", running.id)
    app.control.revoke(running.id, terminate=True, destination=["revoker@interop"])
    try:
        running.get(timeout=20)
        raise AssertionError("a terminated task must not succeed")
    except Exception as error:
        assert type(error).__name__ == "TaskRevokedError"


def test_amqp_task_inspect_reaches_swift_and_celery_workers(swift_worker, celery_worker):
    swift_worker(hostname="swift-pinged@interop")
    celery_worker(hostname="celery-pinged@interop")
    status, out, err = amqp_task("inspect", "ping", "--timeout", "2",
                                 "--destination", "swift-pinged@interop", "--destination", "celery-pinged@interop")
    assert status == 0, err
    replies = [json.loads(line) for line in out.strip().splitlines()]
    assert {"swift-pinged@interop": {"ok": "pong"}} in replies
    assert {"celery-pinged@interop": {"ok": "pong"}} in replies


def wait_until_active(hostname, task_id, seconds=20):
    """`celery inspect active` on `hostname` until it lists `task_id` (the task has started there); returns the list."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        status, out = celery_cli("inspect", "active", "-d", hostname, "--json")
        if status == 0:
            active = json.loads(out.strip().splitlines()[-1]).get(hostname, [])
            if any(task["id"] == task_id for task in active):
                return active
        time.sleep(0.2)
    raise AssertionError(f"{task_id} never became active on {hostname}")


def start_event_viewer(*extra):
    """`amqp-task events`, returned once it says it is consuming (no later event can be missed)."""
    viewer = subprocess.Popen([__import__("conftest").binary("amqp-task"), "events", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([viewer.stderr], [], [], 30)
    line = viewer.stderr.readline() if ready else ""
    if "listening" not in line:
        viewer.kill()
        raise AssertionError(f"amqp-task events did not start: {line!r}")
    return viewer


def test_amqp_task_events_shows_task_events(swift_worker, queue):
    viewer = start_event_viewer("--count", "50")
    swift_worker("--events", hostname="viewed@interop")
    result = app.send_task("demo.add", args=[4, 5], queue=queue)
    assert result.get(timeout=20) == 9
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(viewer.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.time() + 20
    while time.time() < deadline and not any("task-succeeded" in l and result.id in l for l in lines):
        time.sleep(0.1)
    viewer.kill()
    assert any("viewed@interop task-succeeded" in l and result.id in l for l in lines), lines


def test_amqp_task_events_top_shows_a_table_of_workers_and_tasks(swift_worker, queue):
    viewer = start_event_viewer("--top", "--count", "4")
    swift_worker("--events", hostname="topped@interop")
    result = app.send_task("demo.add", args=[1, 2], queue=queue)
    assert result.get(timeout=20) == 3
    out, _ = viewer.communicate(timeout=30)
    last = out.split("\x1b[H\x1b[2J")[-1]
    assert "topped@interop" in last and "online" in last
    assert result.id in last and "demo.add" in last
