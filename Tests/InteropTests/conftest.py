"""Fixtures: real amqp-worker and celery worker processes on the local broker that Deploy/test started."""
import os
import pathlib
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


def assert_nothing_lost(report, count):
    """Checks a report of Tests/FaultClient: every confirmed task answered, and every second answer explained."""
    assert report["failed_sends"] == 0, report
    assert report["sent"] == count, report
    assert report["answered"] == count and report["missing"] == [], report
    # A task answered twice was run twice: only a redelivery or a repeated unconfirmed publish may cause that.
    assert report["extra_results"] <= report["redelivered_extras"] + report["republished"], report
