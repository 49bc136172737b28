"""A task whose worker keeps dying on it stops being redelivered at the queue's delivery limit and lands in the
dead-letter queue with RabbitMQ's death headers; `amqp-task dead` lists and replays it."""
import json
import subprocess
import time

from conftest import amqp_task, binary


def test_poison_task_is_dead_lettered_at_the_delivery_limit_and_can_be_replayed(processes, queue, tmp_path):
    config = tmp_path / "poison.toml"
    config.write_text(f"""
[[queues]]
name = "{queue}"
type = "quorum"
delivery_limit = 2

[worker]
queues = ["{queue}"]

[tasks."poison.crash"]
command = ["/bin/sh", "-c", "kill -9 $PPID"]   # the worker process dies on this task, every time
""")
    status, out, err = amqp_task("declare", "--config", str(config))
    assert status == 0, err
    status, out, err = amqp_task("send", "poison.crash", "--queue", queue)
    assert status == 0, err
    task_id = out.strip()

    deaths = 0
    for attempt in range(6):
        process, _ = processes.start(f"worker{attempt}", [binary("amqp-worker"), "--config", str(config)],
                                     f"consuming {queue}")
        process.wait(timeout=30)
        deaths += process.returncode == -9
        status, out, _ = amqp_task("dead", "list", queue, "--config", str(config))
        if out.strip():
            break
    dead = [json.loads(line) for line in out.strip().splitlines()]
    assert deaths == 3, "delivered three times: the first delivery and two redeliveries"
    assert len(dead) == 1
    assert dead[0]["id"] == task_id and dead[0]["task"] == "poison.crash" and dead[0]["queue"] == queue
    assert dead[0]["reason"].startswith("delivery_limit")

    status, out, err = amqp_task("dead", "requeue", queue, "--config", str(config))
    assert status == 0 and "requeued 1" in out, err
    status, out, _ = amqp_task("queues", queue, f"{queue}.dead", "--config", str(config))
    rows = {line.split()[0]: line.split()[1] for line in out.strip().splitlines()[1:]}
    assert rows == {queue: "1", f"{queue}.dead": "0"}
    status, out, err = amqp_task("purge", queue, "--force", "--config", str(config))
    assert status == 0, err
