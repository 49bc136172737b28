"""The Celery 5.7 application whose messages make-captures records: the client that sends the task messages and the
worker (prefork, events, track started, acks late) that answers with results and events. JSON only, rpc:// results.
The broker URL comes from CAPTURE_BROKER_URL (make-captures points it at a vhost of its own on the local broker)."""
import os

from celery import Celery

app = Celery("captures", broker=os.environ["CAPTURE_BROKER_URL"], backend="rpc://")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    result_accept_content=["json"],
    task_track_started=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="tasks.add")
def add(x, y, z=0):
    return x + y + z


@app.task(name="tasks.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="tasks.retry_once", bind=True, max_retries=1)
def retry_once(self):
    """Fails once with a retry (a RETRY result and a task-retried event), then succeeds."""
    if self.request.retries == 0:
        raise self.retry(exc=KeyError("try again"), countdown=1)
    return {"retries": self.request.retries}


@app.task(name="tasks.progress", bind=True)
def progress(self, steps):
    """Reports PROGRESS {"current": i, "total": steps} with update_state for i in 1..steps (custom-state results)."""
    for i in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"current": i, "total": steps})
    return steps
