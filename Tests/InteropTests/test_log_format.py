"""`amqp-worker --log-format json`: every line on standard error is one JSON object with time, level, message,
worker and, on a task's lines, task and task_id; bad values of --log-format and [worker] log_format are refused."""
import datetime
import json
import signal
import subprocess
import time

import pytest

from celeryapp import app
from conftest import binary


def wait_for_text(path, text, process, seconds=60):
    deadline = time.monotonic() + seconds
    while text not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"amqp-worker did not log {text!r}; its stderr:\n{path.read_text()}")
        time.sleep(0.1)


def test_json_log_lines_carry_the_task_and_stay_one_line(tmp_path, queue):
    hostname = "swift-json-log@interop"
    stderr_path, stdout_path = tmp_path / "stderr", tmp_path / "stdout"
    with open(stderr_path, "wb") as stderr, open(stdout_path, "wb") as stdout:
        worker = subprocess.Popen(
            [binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", hostname, "--log-format", "json"],
            stdout=stdout, stderr=stderr)
    try:
        wait_for_text(stderr_path, f"consuming {queue}", worker)
        tricky = 'bad "quote" \\ back\nsecond line\ttab é 漢字 🚀'
        ok = app.send_task("demo.add", args=[20, 22], queue=queue)
        failed = app.send_task("demo.fail", args=[tricky], queue=queue)
        unknown = app.send_task("no.such.task", queue=queue)
        assert ok.get(timeout=20) == 42
        with pytest.raises(Exception):
            failed.get(timeout=20)
        with pytest.raises(Exception):
            unknown.get(timeout=20)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    raw = stderr_path.read_bytes()
    assert raw.endswith(b"\n")
    lines = [json.loads(line) for line in raw.split(b"\n")[:-1]]  # every line parses, or this fails
    for line in lines:
        assert {"time", "level", "message", "label", "worker"} <= line.keys(), line
        assert line["worker"] == hostname
        assert line["level"] in {"trace", "debug", "info", "notice", "warning", "error", "critical"}
        assert datetime.datetime.fromisoformat(line["time"]).tzinfo is not None

    def of(task_id):
        return [line for line in lines if line.get("task_id") == task_id]

    assert [line["message"] for line in of(ok.id)][0] == "received"
    assert any(line["message"].startswith("succeeded") and line["task"] == "demo.add" for line in of(ok.id))
    failure = [line for line in of(failed.id) if line["message"].startswith("failed")]
    assert len(failure) == 1 and failure[0]["level"] == "error" and failure[0]["task"] == "demo.fail"
    assert tricky in failure[0]["message"], "the message comes back whole, quotes, newline and all"
    rejected = [line for line in of(unknown.id) if line["message"].startswith("rejected")]
    assert len(rejected) == 1 and rejected[0]["task"] == "no.such.task" and rejected[0]["level"] == "error"
    assert any(f"worker {hostname} stopped" in line["message"] for line in lines)


def test_a_bad_log_format_is_refused(tmp_path):
    result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--log-format", "yaml"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 64, result.stderr
    assert "--log-format" in result.stderr and "yaml" in result.stderr and "json" in result.stderr

    config = tmp_path / "worker.toml"
    config.write_text('[worker]\nqueues = ["x"]\nlog_format = "yaml"\n')
    result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"{config}:3" in result.stderr and "log_format" in result.stderr and "text, json" in result.stderr

    result = subprocess.run([binary("amqp-worker"), "--demo-tasks", "--log-level", "loud"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 64 and "--log-level" in result.stderr and "loud" in result.stderr, result.stderr
