"""A cluster-wide rate limit (`rate_limit_scope = "cluster"`) across three amqp-worker processes, with the worker
that refills the tokens SIGKILLed mid-run: another takes over, every task runs, no token is used twice, and no
window of T seconds holds more starts than ceil(rate * T) + 1 + burst + W (W the consumer slots waiting for a token:
each may hold one delivered before the window opens), plus one for the takeover."""
import datetime
import json
import math
import signal
import time

from celeryapp import app
from conftest import binary

RATE = 10.0
BURST = 1
TOKEN_LINE = "took cluster rate-limit token "


def starts(logs):
    """(start time in seconds, token id, task id) of every start the workers logged (JSON logs)."""
    found = []
    for log in logs:
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            message = entry.get("message", "")
            if message.startswith(TOKEN_LINE):
                at = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
                found.append((at, message[len(TOKEN_LINE):], entry.get("task_id")))
    return found


def most_in_window(times, seconds):
    times = sorted(times)
    most, end = 0, 0
    for begin in range(len(times)):
        while end < len(times) and times[end] - times[begin] <= seconds:
            end += 1
        most = max(most, end - begin)
    return most


def test_the_refiller_killed_another_takes_over_and_the_bound_holds(processes, queue, tmp_path):
    config = tmp_path / "cluster-rate.toml"
    config.write_text('[tasks."demo.add"]\nrate_limit = "10/s"\nrate_limit_scope = "cluster"\n')
    workers = {}
    for index in range(3):
        hostname = f"rate{index}@interop"
        workers[hostname] = processes.start(
            f"amqp-worker-{index}",
            [binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", hostname, "--concurrency", "2",
             "--config", str(config), "--log-format", "json"],
            f"consuming {queue}")
    logs = [log for _, log in workers.values()]

    total = 150
    results = [app.send_task("demo.add", args=[index, 1], queue=queue) for index in range(total)]
    deadline = time.time() + 60
    while len(starts(logs)) < 40 and time.time() < deadline:
        time.sleep(0.1)
    taken = starts(logs)
    assert len(taken) >= 40, "the cluster started tasks"
    refiller = taken[-1][1].split("/")[0]
    assert refiller in workers, taken[-1]
    workers[refiller][0].send_signal(signal.SIGKILL)

    assert [result.get(timeout=120) for result in results] == [index + 1 for index in range(total)]
    taken = starts(logs)
    tokens = [token for _, token, _ in taken]
    assert len(set(tokens)) == len(tokens), "no token was used twice"
    refillers = {token.split("/")[0] for token in tokens}
    assert refiller in refillers and len(refillers) == 2, f"another worker took over: {refillers}"
    for seconds in (1.0, 3.0):
        waiting_slots = 3 * 2  # three workers, --concurrency 2: each slot may hold a token in flight
        bound = math.ceil(RATE * seconds) + 1 + BURST + waiting_slots + 1  # one takeover
        most = most_in_window([at for at, _, _ in taken], seconds)
        assert most <= bound, f"{most} starts within {seconds} s; the bound is {bound}"
