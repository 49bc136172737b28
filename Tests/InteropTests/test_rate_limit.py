"""Rate limits on a Swift worker as a Celery user sets them: `[tasks."NAME"] rate_limit` in its configuration, and
`celery control rate_limit` (Celery's own control client) at run time, answered as a Celery worker answers."""
import time

from celeryapp import app


def test_a_rate_limit_holds_and_celery_control_changes_it(swift_worker, queue, tmp_path):
    config = tmp_path / "rate.toml"
    config.write_text('[tasks."demo.add"]\nrate_limit = "5/s"\n')
    _, log = swift_worker("--config", str(config), "--remote-control", "all", hostname="rated@interop")

    sent = time.monotonic()
    results = [app.send_task("demo.add", args=[index, 1], queue=queue) for index in range(20)]
    assert [result.get(timeout=60) for result in results] == [index + 1 for index in range(20)]
    # Each start is at least 0.2 s after the one before, the first no sooner than the first send.
    assert time.monotonic() - sent >= 3.8

    replies = app.control.rate_limit("demo.add", "100/s", destination=["rated@interop"], reply=True, timeout=10)
    assert replies == [{"rated@interop": {"ok": "new rate limit set successfully"}}]
    assert "rate limit of demo.add set to 100/s by remote control" in log.read_text()
    results = [app.send_task("demo.add", args=[index, 1], queue=queue) for index in range(200)]
    assert [result.get(timeout=120) for result in results] == [index + 1 for index in range(200)]

    replies = app.control.rate_limit("no.such.task", "1/s", destination=["rated@interop"], reply=True, timeout=10)
    assert replies == [{"rated@interop": {"error": "unknown task"}}]
    replies = app.control.rate_limit("demo.add", "0", destination=["rated@interop"], reply=True, timeout=10)
    assert replies == [{"rated@interop": {"ok": "rate limit disabled successfully"}}]
