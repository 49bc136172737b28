"""Revokes that last: a revoke outlives the Swift worker that obeyed it and reaches workers started after it (the
stream amqp-tasks.revoked), whether `celery control revoke` or `amqp-task revoke` sent it."""
import signal
import uuid

import pytest

from celeryapp import app
from conftest import amqp_task


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
