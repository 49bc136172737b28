"""10,000 tasks, 3 Swift workers, one of them killed with SIGKILL every 2 s and started again: every task is answered
(at least once: a killed worker's unacked task is redelivered to another)."""
import json
import random
import signal
import subprocess
import time

from celeryapp import broker_url
from conftest import binary


def test_ten_thousand_tasks_survive_a_worker_killed_every_two_seconds(processes, queue, tmp_path):
    def start(n):
        process, _ = processes.start(f"worker{n}-{time.time_ns()}", [
            binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", f"w{n}-{time.time_ns()}@kills"],
            f"consuming {queue}")
        return process

    # Declare the queue and start the workers before the tasks arrive.
    workers = {n: None for n in range(3)}
    first = subprocess.Popen([binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", "declarer@kills"],
                             stderr=subprocess.PIPE, text=True)
    for line in first.stderr:
        if f"consuming {queue}" in line:
            break
    first.terminate()
    first.wait(timeout=30)
    for n in workers:
        workers[n] = start(n)

    # TaskClient sends all 10,000 (confirmed) and waits for every result.
    client = subprocess.Popen([binary("amqp-tasks-bench"), "roundtrip", broker_url(), queue, "10000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kills = 0
    deadline = time.time() + 240
    while client.poll() is None and time.time() < deadline:
        time.sleep(2)
        victim = random.choice(list(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=30)
        kills += 1
        workers[victim] = start(victim)
    out, err = client.communicate(timeout=60)
    assert client.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["received"] == 10000
    assert kills >= 2, "workers were killed while the tasks ran"
