"""Revokes that last: a revoke outlives the Swift worker that obeyed it and reaches workers started after it (the
stream amqp-tasks.revoked), whether `celery control revoke` or `amqp-task revoke` sent it."""
import os
import signal
import time
import uuid

import pytest
from celery import Celery
from kombu import Connection

from celeryapp import app
from conftest import amqp_task, binary, broker


def assert_revoked(result):
    with pytest.raises(Exception) as raised:
        result.get(timeout=30)
    assert type(raised.value).__name__ == "TaskRevokedError", raised.value


def test_a_revoke_from_celery_control_outlives_the_swift_worker_that_obeyed_it(swift_worker, queue):
    revoked = str(uuid.uuid4())
    first, _ = swift_worker("--remote-control", "all", hostname="revoke-first@interop")
    replies = app.control.revoke(revoked, destination=["revoke-first@interop"], reply=True, timeout=10)
    assert replies == [{"revoke-first@interop": {"ok": f"tasks {revoked} flagged as revoked"}}], replies
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0

    swift_worker(hostname="revoke-second@interop")
    assert_revoked(app.send_task("demo.add", args=[1, 1], queue=queue, task_id=revoked))
    assert app.send_task("demo.add", args=[2, 2], queue=queue).get(timeout=30) == 4


def test_amqp_task_revoke_reaches_a_worker_started_later(swift_worker, queue):
    revoked = str(uuid.uuid4())
    status, out, err = amqp_task("revoke", revoked)
    assert status == 0, err
    assert out.startswith("revoked 1 task(s): recorded in amqp-tasks.revoked"), out

    swift_worker(hostname="revoke-later@interop")
    assert_revoked(app.send_task("demo.add", args=[1, 1], queue=queue, task_id=revoked))
    assert app.send_task("demo.add", args=[2, 2], queue=queue).get(timeout=30) == 4


def test_amqp_task_revoke_needs_an_id():
    status, _, err = amqp_task("revoke")
    assert status != 0
    assert "Missing expected argument" in err and "Task ids" in err


def test_amqp_task_revoke_reaches_running_workers_when_it_cannot_be_recorded(processes, queue):
    """Someone declared amqp-tasks.revoked as a classic queue first (any user of the vhost may), so the revoke cannot
    be recorded to last; the running workers must get it all the same, and amqp-task must say what failed. In a
    vhost of its own, so the other tests keep their stream."""
    vhost = f"revoke-{uuid.uuid4().hex[:8]}"
    url = f"amqp://guest:guest@127.0.0.1:{os.environ.get('AMQP_BROKER_PORT', '5672')}/{vhost}"
    broker("ctl", "add_vhost", vhost)
    try:
        broker("ctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        with Connection(url) as connection:
            connection.channel().queue_declare("amqp-tasks.revoked", durable=True, auto_delete=False)
        hostname = "revoke-unrecorded@interop"
        processes.start(
            "amqp-worker",
            [binary("amqp-worker"), "--url", url, "--demo-tasks", "--queue", queue, "--hostname", hostname,
             "--remote-control", "all"],
            f"consuming {queue}")
        revoked = str(uuid.uuid4())
        status, out, err = amqp_task("revoke", "--url", url, revoked)
        assert status == 1, (out, err)
        # Not the current app: the vhost is deleted at the end, and later tests use the current app.
        inspector = Celery(broker=url, set_as_current=False).control.inspect(destination=[hostname], timeout=5)
        seen = []
        for _ in range(30):
            seen = (inspector.revoked() or {}).get(hostname) or []
            if revoked in seen:
                break
        assert revoked in seen, (seen, err)
        assert "could not record it in amqp-tasks.revoked" in err, err
    finally:
        processes.stop_all()
        broker("ctl", "delete_vhost", vhost)
