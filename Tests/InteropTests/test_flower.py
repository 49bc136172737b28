"""Flower 2 shows Swift workers and their tasks, and revokes them; checked in headless Chromium.

Screenshots go to .build/screenshots/ so a test run leaves the work tree clean; `Deploy/refresh-screenshots`
runs this test with AMQP_TASKS_SCREENSHOTS=Deploy/docs to refresh the README's pictures."""
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import json
import urllib.request

import pytest

from celeryapp import app

REPO = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / os.environ.get("AMQP_TASKS_SCREENSHOTS", ".build/screenshots")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(*args):
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("chromium is not installed: Deploy/install-deps installs it")
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                            capture_output=True, text=True, timeout=120)
    return result.stdout


def flower_api(flower, path):
    with urllib.request.urlopen(f"{flower}/api/{path}", timeout=10) as response:
        return json.load(response)


def wait_for(what, probe, seconds=60):
    """Polls `probe` until it returns something true; fails the test naming `what` after `seconds` (a safety net)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception:  # Flower not answering yet, or the page not rendered
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def flower(processes):
    port = free_port()
    processes.start(
        "flower",
        [sys.executable, "-m", "celery", "-A", "celeryapp", "flower", "--address=127.0.0.1", f"--port={port}"],
        "Visit me at",
        env={"PYTHONPATH": str(pathlib.Path(__file__).parent), "FLOWER_UNAUTHENTICATED_API": "true"},
    )
    return f"http://127.0.0.1:{port}"


def test_flower_lists_swift_workers_and_tasks_and_revokes(flower, swift_worker, queue):
    swift_worker("--events", "--remote-control", "all", hostname="swift-in-flower@interop")
    result = app.send_task("demo.add", args=[20, 22], queue=queue)
    assert result.get(timeout=20) == 42
    # Flower knows the task once the worker's events reached it: wait for that, then look at its pages.
    wait_for("Flower to record demo.add as succeeded",
             lambda: flower_api(flower, f"task/info/{result.id}").get("state") == "SUCCESS")

    workers = chromium("--virtual-time-budget=8000", "--dump-dom", f"{flower}/workers")
    assert "swift-in-flower@interop" in workers
    assert "Online" in workers
    tasks = chromium("--virtual-time-budget=8000", "--dump-dom", f"{flower}/tasks")
    assert result.id[:18] in tasks and "demo.add" in tasks

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for page in ("workers", "tasks"):
        shot = SCREENSHOTS / f"flower-{page}.png"
        chromium("--virtual-time-budget=8000", "--window-size=1400,700", f"--screenshot={shot}", f"{flower}/{page}")
        assert shot.exists() and shot.stat().st_size > 10_000

    running = app.send_task("demo.sleep", args=[30], queue=queue)
    wait_for("Flower to see demo.sleep started",
             lambda: flower_api(flower, f"task/info/{running.id}").get("state") == "STARTED")
    request = urllib.request.Request(
        f"{flower}/api/task/revoke/{running.id}", method="POST", data=b"terminate=true",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    with pytest.raises(Exception) as raised:
        running.get(timeout=20)
    assert type(raised.value).__name__ == "TaskRevokedError"


def test_flower_turns_on_the_events_of_a_worker_started_without_them(flower, swift_worker, queue):
    hostname = "swift-asked-by-flower@interop"
    swift_worker(hostname=hostname)  # the defaults: no --events, read-only remote control

    # Flower's workers page lists only workers whose events it received; nothing but Flower's periodic
    # enable_events turns this worker's on.
    def listed_online():
        with urllib.request.urlopen(f"{flower}/workers?json=1", timeout=10) as response:
            workers = json.load(response)["data"]
        return any(worker.get("hostname") == hostname and worker.get("status") is True for worker in workers)

    wait_for("Flower to list the worker started without --events as online", listed_online)
    result = app.send_task("demo.add", args=[1, 2], queue=queue)
    assert result.get(timeout=20) == 3
    wait_for("Flower to record the task as succeeded",
             lambda: flower_api(flower, f"task/info/{result.id}").get("state") == "SUCCESS")
    workers = chromium("--virtual-time-budget=8000", "--dump-dom", f"{flower}/workers")
    assert hostname in workers


def flower_post(flower, path, form=b""):
    request = urllib.request.Request(f"{flower}/api/{path}", method="POST", data=form,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def wait_for_flower_to_inspect(flower, hostname):
    """Flower's control buttons act only on workers its inspector has answered (`/api/workers?refresh=1` asks)."""
    wait_for(f"Flower's inspector to reach {hostname}",
             lambda: hostname in flower_api(flower, "workers?refresh=1"))


def test_flowers_shut_down_button_stops_a_full_worker(flower, swift_worker, queue):
    hostname = "swift-shut-by-flower@interop"
    process, log = swift_worker("--events", "--remote-control", "full", hostname=hostname)
    wait_for_flower_to_inspect(flower, hostname)
    assert app.send_task("demo.add", args=[1, 2], queue=queue).get(timeout=20) == 3
    # Flower's "Shut Down" button (the API it posts to): a warm shutdown, and the worker exits 0.
    status, body = flower_post(flower, f"worker/shutdown/{hostname}")
    assert (status, body) == (200, {"message": "Shutting down!"})
    assert process.wait(timeout=60) == 0, log.read_text()
    assert "Got shutdown from remote: warm shutdown by remote control" in log.read_text()


def test_flowers_shut_down_button_is_refused_by_a_worker_on_the_default_access(flower, swift_worker, queue):
    hostname = "swift-not-shut-by-flower@interop"
    process, log = swift_worker("--events", hostname=hostname)
    wait_for_flower_to_inspect(flower, hostname)
    # Flower asks for no reply to shutdown; the worker answers the refusal all the same and logs it.
    assert flower_post(flower, f"worker/shutdown/{hostname}")[0] == 200
    wait_for("the worker to log the refused shutdown", lambda: "refused remote-control shutdown" in log.read_text())
    assert process.poll() is None
    assert app.send_task("demo.add", args=[1, 2], queue=queue).get(timeout=20) == 3
