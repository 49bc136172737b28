"""Drives Tests/FaultClient (amqp-tasks-fault-client) from a test: starts it, waits for its pauses and releases
them, and collects its report once the queues are drained."""
import json
import os
import subprocess
import time

import pytest

from celeryapp import broker_url
from conftest import binary, wait_until_drained

# Every kind of task the fault client knows: plain, countdown (a delay queue), a retry (RETRY then SUCCESS), an exec
# handler (which asks for one retry itself), and a task that fails on purpose.
ALL_KINDS = "trace,countdown,retry,exec,fail"

# The exec handler of the `exec` kind: asks for a retry (exit 75) on its first attempt, then echoes its input, so
# the answer names the task it belongs to.
EXEC_SCRIPT = """#!/bin/sh
input=$(cat)
case "$input" in *'"retries":0'*) echo "first attempt asks for a retry" >&2; exit 75;; esac
printf '%s\\n' "$input"
"""


def exec_handler_option(tmp_path):
    """The amqp-worker option that registers `fault.exec`, the exec handler of the `exec` kind."""
    script = tmp_path / "fault-exec.sh"
    if not script.exists():
        script.write_text(EXEC_SCRIPT)
        script.chmod(0o755)
    return ("--exec", f"fault.exec={script}")


class FaultClient:
    """One amqp-tasks-fault-client process; its stderr goes to `<name>.err` in the test's folder."""

    def __init__(self, processes, tmp_path, name, queue, count, batch=200, timeout=240, window=None, pause_after=(),
                 kinds=ALL_KINDS, await_drain=True):
        self.name, self.queue = name, queue
        self.err_path = tmp_path / f"{name}.err"
        args = [binary("amqp-tasks-fault-client"), broker_url(), queue, str(count), str(batch), str(timeout)]
        if window is not None:
            args.append(str(window))
        env = {**os.environ, "FAULT_CLIENT_KINDS": kinds,
               "FAULT_CLIENT_PAUSE_AFTER": ",".join(str(b) for b in pause_after),
               "FAULT_CLIENT_AWAIT_DRAIN": "1" if await_drain else "0"}
        handle = open(self.err_path, "w")
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=handle, text=True,
                                        env=env)
        processes.running.append((self.process, handle))  # stopped when the test ends, whatever happened

    @property
    def err(self):
        return self.err_path.read_text()

    def said(self, text):
        return text in self.err

    def wait_for(self, text, seconds=300, while_waiting=None):
        """Waits until the client's stderr contains `text`, calling `while_waiting()` between polls."""
        deadline = time.time() + seconds
        while not self.said(text):
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.process.returncode}) before saying '{text}':\n{self.err[-3000:]}")
            if time.time() > deadline:
                pytest.fail(f"{self.name} did not say '{text}' within {seconds} s:\n{self.err[-3000:]}")
            if while_waiting:
                while_waiting()
            time.sleep(0.1)

    def wait_paused(self, batch, while_waiting=None):
        self.wait_for(f"fault-client: paused after batch {batch}\n", while_waiting=while_waiting)

    def release(self):
        """Lets a paused client go on (or a drained one count copies)."""
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    @property
    def reply_queue(self):
        for line in self.err.splitlines():
            if line.startswith("fault-client: reply queue "):
                return line.split()[-1]
        pytest.fail(f"{self.name} did not name its reply queue:\n{self.err[-3000:]}")

    def finish(self, timeout=300):
        """Once every task is answered, waits until the task queue, its dead-letter queue, the delay queues and the
        client's reply queue are empty (ready and unacked), so every second answer has arrived; then returns the
        report. The queues ending empty is itself a check: nothing stays behind, nothing goes round."""
        deadline = time.time() + timeout
        while not self.said("all answered; waiting") and self.process.poll() is None:
            if time.time() > deadline:
                pytest.fail(f"{self.name} did not finish within {timeout} s:\n{self.err[-3000:]}")
            time.sleep(0.2)
        if self.process.poll() is None:
            wait_until_drained({self.queue, f"{self.queue}.dead", self.reply_queue})
            self.release()
        out, _ = self.process.communicate(timeout=120)
        assert self.process.returncode == 0, f"the fault client failed:\n{self.err[-3000:]}"
        report = json.loads(out.strip().splitlines()[-1])
        (self.err_path.parent / f"{self.name}.report.json").write_text(json.dumps(report, indent=1))
        return report
