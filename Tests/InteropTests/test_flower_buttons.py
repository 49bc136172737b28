"""Flower 2's worker-page buttons, pressed with the mouse in headless Chromium, reshape a Swift worker: pool grow and
shrink, autoscale, add and cancel consumer, rate limit, soft and hard time limit, shut down. Each effect is checked
through Celery's own remote control (`celery inspect`) and the broker's consumer counts, not only Flower's toast.
One Flower and one full worker serve every button; a second worker, on the default access, shows Shut Down refused.

A screenshot of the worker page goes to .build/screenshots/ (see test_flower.py)."""
import pathlib
import sys
import uuid

import pytest

from celeryapp import app
from conftest import binary
from headless import HeadlessChromium
from test_flower import SCREENSHOTS, free_port, wait_for_flower_to_inspect
from test_metrics import wait_for
from test_pool_control import active_queue_names, consumers_of, declare, delete, stats
from test_remote_control import wait_for_remote_control


@pytest.fixture
def flower(processes):
    """Flower on the application of flowerapp.py (celeryapp's, knowing the name demo.add for the limit buttons)."""
    port = free_port()
    processes.start(
        "flower",
        [sys.executable, "-m", "celery", "-A", "flowerapp", "flower", "--address=127.0.0.1", f"--port={port}"],
        "Visit me at",
        env={"PYTHONPATH": str(pathlib.Path(__file__).parent), "FLOWER_UNAUTHENTICATED_API": "true"},
    )
    return f"http://127.0.0.1:{port}"


def registered_with_limits(hostname, task):
    """`celery inspect registered rate_limit time_limit soft_time_limit`: the task's line, limits in brackets."""
    names = app.control.inspect(destination=[hostname], timeout=5).registered(
        "rate_limit", "time_limit", "soft_time_limit")[hostname]
    return next(name for name in names if name.split(" ")[0] == task)


def reload_until(browser, page, what, expression):
    """Flower renders a worker page from its cache and refreshes the cache behind it: reload until it shows `what`."""
    def shown():
        browser.open(page)
        return browser.evaluate(expression)
    wait_for(f"Flower's worker page to show {what}", shown)


def show_tab(browser, tab):
    browser.click(f"#worker-tab-{tab}")
    browser.wait_until(f"the {tab} tab", f"document.querySelector('#tab-{tab}').classList.contains('show')")


def test_flowers_buttons_reshape_a_swift_worker_and_shut_it_down(flower, swift_worker, processes, queue, tmp_path):
    hostname = f"buttons-{uuid.uuid4().hex[:6]}@interop"
    guarded = f"guarded-{uuid.uuid4().hex[:6]}@interop"
    extra = f"{queue}.extra"
    declare(extra)
    browser = None
    try:
        process, log = swift_worker("--events", "--remote-control", "full", hostname=hostname)
        guarded_process, guarded_log = processes.start(
            "guarded-worker",
            [binary("amqp-worker"), "--demo-tasks", "--queue", f"{queue}.guarded", "--hostname", guarded, "--events"],
            f"consuming {queue}.guarded")
        wait_for_remote_control(hostname)
        wait_for_flower_to_inspect(flower, hostname)
        wait_for_flower_to_inspect(flower, guarded)
        browser = HeadlessChromium(tmp_path / "chromium-profile")
        page = f"{flower}/worker/{hostname}"
        browser.open(page)

        # Pool tab: Grow by 2, Shrink by 1.
        browser.type_into("#pool-size", "2")
        assert browser.click_and_read_toast("#worker-pool-grow") == f"Growing '{hostname}' worker's pool by 2"
        assert stats(hostname)["concurrency"] == 3
        wait_for("three consumers", lambda: consumers_of(queue) == (0, 3))
        browser.type_into("#pool-size", "1")
        assert browser.click_and_read_toast("#worker-pool-shrink") == f"Shrinking '{hostname}' worker's pool by 1"
        assert stats(hostname)["concurrency"] == 2
        wait_for("two consumers", lambda: consumers_of(queue) == (0, 2))

        # Autoscale's Apply: the range holds, and Grow is then refused as a Celery worker refuses it.
        browser.type_into("#min-autoscale", "1")
        browser.type_into("#max-autoscale", "4")
        assert browser.click_and_read_toast("#worker-pool-autoscale") == (
            f"Autoscaling '{hostname}' worker (min=1, max=4)")
        assert stats(hostname)["autoscaler"]["max"] == 4 and stats(hostname)["autoscaler"]["min"] == 1
        refused = browser.click_and_read_toast("#worker-pool-grow")
        assert "pool_grow is not supported with autoscale" in refused, refused
        reload_until(browser, page, "the autoscaler", "document.body.innerText.includes('Autoscaler options')")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOTS / "flower-worker-pool.png")

        # Queues tab: Add a consumer, then its Cancel Consumer button (the table lists it once the page reloads).
        show_tab(browser, "queues")
        browser.type_into("#add-consumer-name", extra)
        assert browser.click_and_read_toast("#worker-add-consumer") == f"add consumer {extra}"
        assert active_queue_names(hostname) == [queue, extra]
        assert app.send_task("demo.add", args=[2, 2], queue=extra).get(timeout=30) == 4
        reload_until(browser, page, f"the consumer of {extra}",
                     f"document.getElementById('worker-cancel-consumer-{extra}') !== null")
        show_tab(browser, "queues")
        assert browser.click_and_read_toast(f'[id="worker-cancel-consumer-{extra}"]') == (
            f"no longer consuming from {extra}")
        assert active_queue_names(hostname) == [queue]
        wait_for(f"no consumer on {extra}", lambda: consumers_of(extra)[1] == 0)

        # Limits tab: a rate limit, then a soft and a hard time limit for demo.add.
        show_tab(browser, "limits")
        browser.type_into('input[aria-label="Rate limit for demo.add"]', "10")
        assert browser.click_and_read_toast('[id="task-rate-limit-demo.add"]') == "new rate limit set successfully"
        assert registered_with_limits(hostname, "demo.add") == "demo.add [rate_limit=10/s]"
        browser.type_into('input[aria-label="Timeout for demo.add"]', "30")
        assert browser.click_and_read_toast('[id="task-timeout-soft-demo.add"]') == "time limits set successfully"
        assert registered_with_limits(hostname, "demo.add") == "demo.add [rate_limit=10/s soft_time_limit=30.0]"
        browser.type_into('input[aria-label="Timeout for demo.add"]', "60")
        assert browser.click_and_read_toast('[id="task-timeout-hard-demo.add"]') == "time limits set successfully"
        # As in Celery, a time_limit request sets both limits: the one left out is none.
        assert registered_with_limits(hostname, "demo.add") == "demo.add [rate_limit=10/s time_limit=60.0]"
        assert app.send_task("demo.add", args=[1, 2], queue=queue).get(timeout=30) == 3

        # Shut Down: refused by the worker on the default access (Flower asks for no reply, so it says it went).
        browser.open(f"{flower}/worker/{guarded}")
        browser.click("#worker-group")
        assert browser.click_and_read_toast("#worker-shutdown") == "Shutting down!"
        wait_for("the refusal in the guarded worker's log",
                 lambda: "refused remote-control shutdown" in guarded_log.read_text())
        assert guarded_process.poll() is None
        assert app.control.ping(destination=[guarded], timeout=5) == [{guarded: {"ok": "pong"}}]
        # ...and obeyed by the full one: a warm shutdown, exit status 0.
        browser.open(page)
        browser.click("#worker-group")
        assert browser.click_and_read_toast("#worker-shutdown") == "Shutting down!"
        assert process.wait(timeout=60) == 0, log.read_text()
        assert "Got shutdown from remote: warm shutdown by remote control" in log.read_text()
    finally:
        if browser is not None:
            browser.close()
        delete(extra, f"{queue}.guarded")
