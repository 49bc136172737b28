"""Celery's time limits (`apply_async(time_limit=..., soft_time_limit=...)`, the `timelimit` header) against the
Swift worker's demo tasks, as a Celery caller sees them."""
from celery import signature

from celeryapp import app


def outcome(result, timeout=30):
    """The value, or the name of the exception Celery raises for the task's FAILURE."""
    try:
        return result.get(timeout=timeout)
    except Exception as error:
        return type(error).__name__


def test_a_handler_that_ignores_cancellation_fails_with_time_limit_exceeded_and_the_worker_goes_on(swift_worker, queue):
    swift_worker()  # one consumer: the next task runs only once the stuck one gave its slot back
    stuck = signature("demo.stubborn_sleep", args=[5]).apply_async(queue=queue, time_limit=1.5, soft_time_limit=0.5)
    following = signature("demo.add", args=[2, 3]).apply_async(queue=queue)
    assert outcome(stuck) == "TimeLimitExceeded"
    assert following.get(timeout=30) == 5


def test_a_handler_that_catches_the_soft_limit_returns_its_own_result(swift_worker, queue):
    swift_worker()
    tidy = signature("demo.soft_sleep", args=[300]).apply_async(queue=queue, time_limit=60, soft_time_limit=0.5)
    assert tidy.get(timeout=30) == {"soft_time_limit_exceeded": True}


def test_a_soft_limit_the_handler_lets_escape_is_soft_time_limit_exceeded(swift_worker, queue):
    swift_worker()
    sleeper = app.send_task("demo.sleep", args=[300], queue=queue, time_limit=60, soft_time_limit=0.5)
    assert outcome(sleeper) == "SoftTimeLimitExceeded"
