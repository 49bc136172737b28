"""Fixtures: real amqp-worker and celery worker processes on the local broker that Deploy/test started."""
import collections
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / ".build" / "debug"
sys.path.insert(0, str(pathlib.Path(__file__).parent))


def binary(name: str) -> str:
    path = BUILD / name
    if not path.exists():
        pytest.fail(f"{path} is not built: run swift build first (Deploy/test does)")
    return str(path)


@pytest.fixture
def queue():
    """A queue name no other test uses."""
    return f"interop.{uuid.uuid4().hex[:8]}"


class Processes:
    """Starts processes and stops them (SIGTERM, then SIGKILL) when the test ends."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.running = []

    def start(self, name, args, ready_text, env=None):
        log = self.tmp_path / f"{name}.log"
        handle = open(log, "w")
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.running.append((process, handle))
        deadline = time.time() + 60
        while ready_text not in log.read_text():
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(f"{name} did not get ready; its log:\n{log.read_text()}")
            time.sleep(0.1)
        return process, log

    def stop_all(self):
        for process, handle in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, handle in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            handle.close()


@pytest.fixture
def processes(tmp_path):
    p = Processes(tmp_path)
    yield p
    p.stop_all()


@pytest.fixture
def swift_worker(processes, queue):
    """An amqp-worker with the demo tasks consuming `queue`."""

    def start(*extra, hostname="swift@interop"):
        return processes.start(
            "amqp-worker",
            [binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", hostname, *extra],
            f"consuming {queue}",
        )

    return start


@pytest.fixture
def celery_worker(processes, queue):
    """A Celery 5.7 worker, prefork, acks late, prefetch multiplier 1, consuming `queue`."""

    def start(hostname="celery@interop"):
        return processes.start(
            "celery",
            [sys.executable, "-m", "celery", "-A", "celeryapp", "worker", "-Q", queue, "-P", "prefork", "-c", "1",
             "-n", hostname, "--loglevel=INFO", "--without-gossip", "--without-mingle"],
            "ready.",
            env={"PYTHONPATH": str(pathlib.Path(__file__).parent)},
        )

    return start


def amqp_task(*args, timeout=90):
    """Runs the amqp-task CLI; returns (exit status, stdout, stderr)."""
    result = subprocess.run([binary("amqp-task"), *args], capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout, result.stderr


BROKER = REPO / "Deploy" / "broker"


def broker_run(*args, timeout=300):
    """Runs Deploy/broker (with the test's AMQP_BROKER_* ports); returns the finished process."""
    return subprocess.run([str(BROKER), *args], capture_output=True, text=True, timeout=timeout)


def broker(*args, check=True, timeout=300):
    """Runs Deploy/broker; returns its stdout, and fails the test if it fails unless `check` is False."""
    result = broker_run(*args, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"Deploy/broker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def queue_depths():
    """{queue name: (ready, unacknowledged)} for every queue of the local broker."""
    out = broker("ctl", "list_queues", "name", "messages_ready", "messages_unacknowledged", "--quiet",
                 "--no-table-headers")
    depths = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[1].strip().isdigit():
            depths[fields[0]] = (int(fields[1]), int(fields[2]))
    return depths


def wait_until_drained(names, seconds=180):
    """Waits until the queues `names` and every delay queue (celery_delayed_*, amqp-tasks.delay.*) hold no message, ready or
    unacknowledged, on two polls in a row (a message moving from a delay queue to its target queue is briefly in
    neither). Fails with the last depths after `seconds`: a task that loops never lets its queue empty."""
    deadline = time.time() + seconds
    empty_polls = 0
    while True:
        depths = queue_depths()
        watched = {name: depth for name, depth in depths.items()
                   if name in names or name.startswith("amqp-tasks.delay.") or name.startswith("celery_delayed_")}
        busy = {name: depth for name, depth in watched.items() if depth != (0, 0)}
        empty_polls = 0 if busy else empty_polls + 1
        if empty_polls >= 2:
            return
        if time.time() > deadline:
            pytest.fail(f"queues still hold messages (ready, unacked) after {seconds} s: {busy}")
        time.sleep(0.2)


RECEIVED = re.compile(r"task_id=(\S+) \[AMQPTasks\] received( \(redelivered\))?")
# A task goes through a delay queue when the worker parks it (eta ahead) or retries it (the retry waits there too).
PARKED = re.compile(r"task_id=(\S+) \[AMQPTasks\] (?:eta .* parked for |retry \d+/\d+ in )")
# A delivery that came through the delay levels: parked by a worker, or delayed by its client (countdown, eta).
THROUGH_LEVELS = re.compile(r"task_id=(\S+) \[AMQPTasks\] came through the delay levels")


def delay_repeats(worker_logs):
    """Per task id, how many times a delay queue handed it back more often than it was parked: RabbitMQ's
    at-least-once dead-lettering publishes an expired message again when a broker restart interrupted the first
    publish before its confirm. Each time, a task arrives once more, not flagged redelivered (it is a new message)."""
    delivered, redelivered = receipts(worker_logs)
    parked = collections.Counter(match.group(1) for match in PARKED.finditer(worker_logs))
    # A task its client delayed came through the levels without a park: its first delivery is the delayed one.
    delayed = set(parked) | {match.group(1) for match in THROUGH_LEVELS.finditer(worker_logs)}
    return collections.Counter({
        task: delivered[task] - redelivered[task] - parked[task] - 1
        for task in delayed if delivered[task] - redelivered[task] - parked[task] - 1 > 0})


def receipts(worker_logs):
    """From amqp-worker logs (level info): (deliveries per task id, redelivered deliveries per task id)."""
    delivered, redelivered = collections.Counter(), collections.Counter()
    for match in RECEIVED.finditer(worker_logs):
        delivered[match.group(1)] += 1
        if match.group(2):
            redelivered[match.group(1)] += 1
    return delivered, redelivered


def assert_nothing_lost(report, count, worker_logs=None):
    """Checks a report of Tests/FaultClient: every confirmed task answered, every answer (copies included) the right
    status and value for its task, and every task's extra answers explained by that task's own redeliveries or by
    publishes the client repeated in that task's batch, or by a delay queue handing a parked task back twice (see
    `delay_repeats`: at-least-once dead-lettering across a broker restart).

    Redeliveries are counted from `worker_logs` (every amqp-worker log of the run, at level info) when given: that
    covers task kinds whose answer does not say it was redelivered (countdowns, retries, exec handlers). Without
    logs, a `demo.trace` answer's own `redelivered` flag is the evidence."""
    assert report["failed_sends"] == 0, report
    assert report["sent"] == count, report
    assert report["answered"] == count and report["missing"] == [], report
    assert report["wrong_answer_count"] == 0, report["wrong_answers"]
    assert report["failure"] == report["expected_failures"], report
    assert report["success"] == count - report["expected_failures"] and report["revoked"] == 0, report
    redelivered = receipts(worker_logs)[1] if worker_logs is not None else None
    repeats = delay_repeats(worker_logs) if worker_logs is not None else collections.Counter()
    unexplained_by_batch = collections.Counter()
    for task in report["duplicates"]:
        explained = redelivered[task["id"]] if redelivered is not None else task["redelivered_finals"]
        explained += repeats[task["id"]]
        unexplained = task["finals"] - 1 - explained
        if unexplained > 0:
            unexplained_by_batch[task["batch"]] += unexplained
    # A task answered twice was run twice: only its redelivery or a repeated unconfirmed publish of it may cause that.
    for batch, extra in unexplained_by_batch.items():
        republished = report["republished_by_batch"].get(str(batch), 0)
        assert extra <= republished, (
            f"batch {batch}: {extra} extra answers that no redelivery explains, but only {republished} publishes "
            f"were repeated in it: {[t for t in report['duplicates'] if t['batch'] == batch]}")


def assert_nothing_loops(worker_logs, worker_losses, slots_per_worker=1):
    """A task is redelivered only when a worker holding it lost its connection (or died): each loss gives back at most
    the tasks the worker held (`slots_per_worker` = concurrency x prefetch). More redeliveries mean a task went round
    (a nack-requeue loop, a task refused again and again) even if the queue ended empty."""
    redelivered = receipts(worker_logs)[1]
    total = sum(redelivered.values())
    assert total <= worker_losses * slots_per_worker, (
        f"{total} redelivered deliveries but only {worker_losses} worker connections were lost: "
        f"{redelivered.most_common(5)}")
