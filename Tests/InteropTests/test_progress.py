"""Progress states (custom states, Celery's update_state) across Celery and Swift, and amqp-task's progress bar.

The wire format, as a real Celery 5.7 sends it with the rpc:// backend (`self.update_state(state="PROGRESS",
meta=...)`): a message to the task's reply_to with correlation_id = task id, content type application/json, and the
body {"status": "PROGRESS", "result": meta, "traceback": null, "children": [], "date_done": null, "task_id": ...}
(date_done is set only for ready states). The Celery client hands it to `AsyncResult.get(on_message=...)` as that
body, and keeps waiting for a ready state.
"""
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import binary
from celeryapp import app


def wait_for(what, check, seconds=60):
    """Polls `check` until it returns something truthy; fails the test after `seconds` (a safety net only)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def assert_progress_then_success(states, steps):
    statuses = [state["status"] for state in states]
    progress = [state["result"] for state in states if state["status"] == "PROGRESS"]
    assert len(progress) >= 3, f"at least 3 PROGRESS states; got {statuses}"
    currents = [meta["current"] for meta in progress]
    assert currents == sorted(currents) and len(set(currents)) == len(currents), f"in order: {currents}"
    assert all(meta["total"] == steps for meta in progress), progress
    assert statuses[-1] == "SUCCESS", statuses
    assert "SUCCESS" not in statuses[:-1] and "FAILURE" not in statuses, statuses
    assert max(i for i, s in enumerate(statuses) if s == "PROGRESS") < statuses.index("SUCCESS")


def test_a_celery_caller_sees_the_swift_workers_progress_in_order_then_success(swift_worker, queue):
    swift_worker()
    seen = []
    result = app.send_task("demo.progress", args=[5], queue=queue)
    value = result.get(timeout=60, on_message=seen.append)
    assert value == 5
    assert_progress_then_success(seen, 5)
    progress = [state for state in seen if state["status"] == "PROGRESS"]
    assert all(state["task_id"] == result.id and state["date_done"] is None for state in progress), progress


def test_a_swift_caller_sees_a_celery_workers_progress(celery_worker, queue):
    celery_worker()
    # Not a terminal (a pipe): one plain line per PROGRESS state on stderr, the result as JSON on stdout.
    run = subprocess.run(
        [binary("amqp-task"), "send", "py.progress", "--args", "[4]", "--queue", queue, "--wait", "--timeout", "60"],
        capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr
    assert '"status":"SUCCESS"' in run.stdout.replace(" ", "") and '"result":4' in run.stdout.replace(" ", ""), run.stdout
    lines = [line for line in run.stderr.splitlines() if line.startswith("PROGRESS ")]
    assert len(lines) >= 3, run.stderr
    currents = [int(line.split('"current":')[1].split(",")[0].split("}")[0]) for line in lines]
    assert currents == sorted(currents) and len(set(currents)) == len(currents), lines
    assert "\r" not in run.stderr, "no carriage returns when stderr is not a terminal"


def test_amqp_task_draws_a_progress_bar_in_a_terminal(swift_worker, queue, tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is not installed: Deploy/install-deps installs it")
    swift_worker()
    session = f"progress-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "done"
    command = (f"{binary('amqp-task')} send demo.progress --args '[40]' --queue {queue} --wait; "
               f"echo exit=$? > {done}; sleep 600")
    env = {**os.environ, "TERM": "xterm"}
    subprocess.run([tmux, "-L", session, "new-session", "-d", "-s", session, "-x", "100", "-y", "20", command],
                   check=True, env=env)
    try:
        def pane():
            return subprocess.run([tmux, "-L", session, "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True, check=True).stdout
        # A frame while it runs: the bar part-filled (40 steps of 0.1 s leave some 4 s to see one).
        running = wait_for("a part-filled bar", lambda: next(
            (line for line in pane().splitlines() if line.startswith("demo.progress [#") and "-]" in line), None))
        assert "/40" in running, running
        wait_for("amqp-task to end", done.exists)
        final = pane()
        assert done.read_text().strip() == "exit=0", final
        bars = [line for line in final.splitlines() if line.startswith("demo.progress [")]
        assert bars == ["demo.progress [##############################] 40/40 100%"], final
        result_lines = [line for line in final.splitlines() if line.startswith("{")]
        assert len(result_lines) == 1 and '"SUCCESS"' in result_lines[0] and '"result":40' in result_lines[0].replace(" ", ""), final
        print(f"--- frame while running ---\n{running}\n--- pane at the end ---\n{final}")
    finally:
        subprocess.run([tmux, "-L", session, "kill-server"], check=False)
