"""The Celery 5.7 side of Benchmarks/run: the same no-op task as the Swift worker's demo.echo, configured as the
task runtime is (JSON, rpc:// results, acks late, prefetch multiplier 1, publisher confirms)."""
import os

from celery import Celery

app = Celery("benchapp", broker=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"), backend="rpc://")
app.conf.update(
    task_serializer="json", accept_content=["json"], result_serializer="json", result_accept_content=["json"],
    task_acks_late=True, worker_prefetch_multiplier=1, worker_hijack_root_logger=False,
    broker_transport_options={"confirm_publish": True}, broker_connection_retry_on_startup=True,
    # As amqp-worker sends results by default (BENCH_TRANSIENT_RESULTS=1 for Celery's own default, transient).
    result_persistent=not os.environ.get("BENCH_TRANSIENT_RESULTS"),
)


@app.task(name="demo.echo")
def echo(*args, **kwargs):
    return list(args)
