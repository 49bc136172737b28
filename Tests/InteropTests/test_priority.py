"""A Celery client's `priority` on a queue declared with `max_priority`: a Swift worker runs the high-priority task
before the backlog of low ones that was queued ahead of it."""
import re

from celery import Celery

from celeryapp import broker_url
from conftest import amqp_task



def priority_app():
    """As a Celery user configures priorities: its queues are declared with x-max-priority 10, as ours is. Not the
    current app (Celery makes each new app current by default), or the other tests' canvas would declare their
    queues with x-max-priority too."""
    app = Celery("priority", broker=broker_url(), backend="rpc://", set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    result_accept_content=["json"], task_queue_max_priority=10)
    return app


def test_a_celery_clients_high_priority_task_runs_before_the_backlog(swift_worker, queue, tmp_path):
    config = tmp_path / "priority.toml"
    config.write_text(f"""
[[queues]]
name = "{queue}"
max_priority = 10
""")
    status, _, err = amqp_task("declare", "--config", str(config))
    assert status == 0, err
    app = priority_app()
    low = [app.send_task("demo.add", args=[index, 0], queue=queue, priority=1) for index in range(50)]
    high = app.send_task("demo.add", args=[999, 0], queue=queue, priority=9)

    _, log = swift_worker()
    assert high.get(timeout=60) == 999
    assert [result.get(timeout=60) for result in low] == list(range(50))

    received = re.findall(r"task_id=(\S+) \[AMQPTasks\] received", log.read_text())
    assert len(received) == 51, received
    assert high.id in received[:2], f"the high-priority task was received at {received.index(high.id)}"
    assert [task_id for task_id in received if task_id != high.id] == [result.id for result in low], "lows in order"
