"""The Celery 5.7 application the interop tests use: JSON, rpc:// results, acks late, prefetch multiplier 1."""
import os
import socket

from celery import Celery


def broker_url() -> str:
    """Our amqp:// URL in the form kombu reads ("/%2f" is the vhost "/")."""
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")


app = Celery("interop", broker=broker_url(), backend="rpc://")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    result_accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="py.add")
def add(x, y):
    return x + y


@app.task(name="py.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="py.flaky", bind=True, max_retries=3)
def flaky(self, fail_times):
    if self.request.retries < fail_times:
        raise self.retry(exc=KeyError("again"), countdown=1)
    return self.request.retries


@app.task(name="py.now")
def now():
    import time

    return time.time()


@app.task(name="mixed.who")
def who(i):
    return {"i": i, "by": "celery@" + socket.gethostname()}


@app.task(name="py.progress", bind=True)
def progress(self, steps):
    """Reports PROGRESS {"current": i, "total": steps} with update_state for i in 1..steps, then returns steps."""
    import time

    for i in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"current": i, "total": steps})
        time.sleep(0.1)
    return steps
