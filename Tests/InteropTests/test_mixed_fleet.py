"""Celery workers and Swift workers consume the same durable queue and share the work, each task done once."""
import collections
import re
import time

from celeryapp import app
from conftest import queue_depths


def test_mixed_fleet_shares_one_queue(swift_worker, celery_worker, queue, tmp_path):
    _, celery_log = celery_worker()
    script = tmp_path / "who.sh"
    script.write_text('#!/bin/sh\nread input\necho "{\\"by\\": \\"swift\\", \\"input\\": $input}"\n')
    script.chmod(0o755)
    _, swift_log = swift_worker("--exec", f"mixed.who={script}")
    results = [app.send_task("mixed.who", args=[i], queue=queue) for i in range(200)]
    done = collections.Counter()
    for i, result in enumerate(results):
        value = result.get(timeout=60)
        if value["by"] == "swift":
            # The exec handler echoes its input: the task id and arguments it ran with.
            assert value["input"]["id"] == result.id and value["input"]["args"] == [i], (i, value)
            done["swift"] += 1
        else:
            assert value["by"].startswith("celery@") and value["i"] == i, (i, value)
            done["celery"] += 1
    assert done["swift"] > 0 and done["celery"] > 0, f"both kinds of worker took tasks: {dict(done)}"

    # Each task ran once, on one worker: count the runs both workers logged (Celery logs a success after the
    # result is sent, so wait for all 200 lines), and the queue holds nothing more.
    def runs():
        swift = re.findall(r"task=mixed\.who task_id=(\S+) \[AMQPTasks\] succeeded", swift_log.read_text())
        celery = re.findall(r"Task mixed\.who\[([0-9a-f-]+)\] succeeded", celery_log.read_text())
        return collections.Counter(swift + celery), len(swift), len(celery)

    deadline = time.time() + 60
    while sum(runs()[0].values()) < 200 and time.time() < deadline:
        time.sleep(0.1)
    counts, swift_runs, celery_runs = runs()
    assert counts == collections.Counter(result.id for result in results), "every task ran exactly once"
    assert (swift_runs, celery_runs) == (done["swift"], done["celery"]), "each answer came from the worker that ran it"
    assert queue_depths()[queue] == (0, 0)
