"""The Swift client (amqp-task, built on TaskClient) calls tasks that a real Celery worker runs."""
import json
import time

from conftest import amqp_task


def send(queue, name, *extra):
    status, out, err = amqp_task("send", name, "--queue", queue, "--wait", "--timeout", "60", *extra)
    assert out, f"no result line; stderr:\n{err}"
    return status, json.loads(out.strip().splitlines()[-1])


def test_success_comes_back_on_the_swift_reply_queue(celery_worker, queue):
    celery_worker()
    status, line = send(queue, "py.add", "--args", "[2, 3]")
    assert (status, line["status"], line["result"]) == (0, "SUCCESS", 5)


def test_failure_carries_the_python_exception(celery_worker, queue):
    celery_worker()
    status, line = send(queue, "py.fail", "--args", '["bad value"]')
    assert status == 1
    assert line["status"] == "FAILURE"
    assert line["result"]["exc_type"] == "ValueError"
    assert line["result"]["exc_message"] == ["bad value"]
    assert line["result"]["exc_module"] == "builtins"


def test_retries_on_the_celery_side_end_in_success(celery_worker, queue):
    celery_worker()
    status, line = send(queue, "py.flaky", "--args", "[2]")
    assert (status, line["status"], line["result"]) == (0, "SUCCESS", 2)


def test_countdown_is_honoured_by_celery(celery_worker, queue):
    celery_worker()
    start = time.time()
    status, line = send(queue, "py.now", "--countdown", "2")
    assert status == 0
    assert line["result"] - start >= 1.9


def test_expired_task_is_revoked_by_celery(celery_worker, queue):
    celery_worker()
    status, line = send(queue, "py.add", "--args", "[1, 2]", "--countdown", "3", "--expires", "1")
    assert status == 1
    assert line["status"] == "REVOKED"
