"""A Celery client (as a Django app would use it) calls tasks that a Swift amqp-worker runs."""
import time
from datetime import datetime, timedelta, timezone

import pytest
from celery import chain, signature
from celery.exceptions import TaskRevokedError

from celeryapp import app

VALUES = [0, -7, 2**40, 1.5, "text", "grüße ✓", True, False, None, [1, "two", None], {"nested": {"list": [1, 2]}}]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v) for v in VALUES])
def test_success_values_of_every_json_type_come_back(swift_worker, queue, value):
    swift_worker()
    result = app.send_task("demo.echo", args=[value], queue=queue)
    assert result.get(timeout=20) == [value]
    assert result.state == "SUCCESS"


def test_positional_arguments_reach_a_typed_swift_handler(swift_worker, queue):
    swift_worker()
    assert app.send_task("demo.add", args=[2, 3], queue=queue).get(timeout=20) == 5
    assert app.send_task("demo.add", kwargs={"x": 2, "y": 40}, queue=queue).get(timeout=20) == 42


def test_failure_is_raised_in_python_as_the_right_exception(swift_worker, queue):
    swift_worker()
    result = app.send_task("demo.fail", args=["bad value"], queue=queue)
    with pytest.raises(ValueError, match="bad value"):
        result.get(timeout=20)
    assert result.state == "FAILURE"


def test_unknown_task_is_not_registered(swift_worker, queue):
    swift_worker()
    result = app.send_task("no.such.task", queue=queue)
    with pytest.raises(Exception) as raised:
        result.get(timeout=20)
    assert type(raised.value).__name__ == "NotRegistered"


def test_retry_then_success(swift_worker, queue):
    swift_worker()
    result = app.send_task("demo.flaky", args=[2], queue=queue)
    assert result.get(timeout=30) == 2


def test_ignore_result_runs_the_task_and_sends_no_result(swift_worker, queue):
    _, log = swift_worker()
    ignored = app.send_task("demo.add", args=[1, 1], queue=queue, ignore_result=True)
    # One worker, one consumer, one queue: the marker task runs after the ignored one has finished, and a result of
    # the ignored one would have reached the same reply queue before the marker's.
    assert app.send_task("demo.add", args=[2, 2], queue=queue).get(timeout=20) == 4
    assert f"task_id={ignored.id} [AMQPTasks] succeeded" in log.read_text(), "the ignored task ran"
    assert ignored.state == "PENDING", "no state was ever sent for it"


def test_countdown_and_eta_are_honoured(swift_worker, queue):
    swift_worker()
    start = time.time()
    assert app.send_task("demo.echo", args=["later"], queue=queue, countdown=2).get(timeout=30) == ["later"]
    assert time.time() - start >= 1.9
    start = time.time()
    eta = datetime.now(timezone.utc) + timedelta(seconds=2)
    assert app.send_task("demo.echo", args=["at eta"], queue=queue, eta=eta).get(timeout=30) == ["at eta"]
    assert time.time() - start >= 1.9


def test_a_task_that_expires_before_it_may_run_is_revoked(swift_worker, queue):
    swift_worker()
    result = app.send_task("demo.echo", args=["never"], queue=queue, countdown=3, expires=1)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=30)


def test_link_callbacks_and_errbacks_are_sent_on(swift_worker, queue):
    swift_worker()
    callback = signature("demo.add", args=[10], queue=queue).freeze()
    parent = app.send_task("demo.add", args=[2, 3], queue=queue, link=signature("demo.add", args=[10], queue=queue, task_id=callback.id))
    assert parent.get(timeout=20) == 5
    assert app.AsyncResult(callback.id).get(timeout=20) == 15

    errback = signature("demo.echo", queue=queue).freeze()
    failing = app.send_task("demo.fail", args=["x"], queue=queue, link_error=signature("demo.echo", queue=queue, task_id=errback.id))
    with pytest.raises(ValueError):
        failing.get(timeout=20)
    assert app.AsyncResult(errback.id).get(timeout=20) == [failing.id]


def test_a_chain_of_swift_tasks_completes(swift_worker, queue):
    swift_worker()
    workflow = chain(
        signature("demo.add", args=[1, 2], queue=queue),
        signature("demo.add", args=[3], queue=queue),
        signature("demo.add", args=[4], queue=queue),
    )
    assert workflow.apply_async().get(timeout=30) == 10
