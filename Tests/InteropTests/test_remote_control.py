"""Celery's remote-control commands that stop or reshape a worker (`celery control shutdown`, `time_limit`), sent
to Swift workers with Celery 5.7's own command line: refused with an answer under the default access, obeyed under
`--remote-control full`."""
import json
import time

from celeryapp import app
from test_monitoring import celery_cli


def wait_for_remote_control(hostname, seconds=60):
    deadline = time.time() + seconds
    while not app.control.ping(destination=[hostname], timeout=1):
        assert time.time() < deadline, f"{hostname} never answered ping"


def test_celery_control_shutdown_is_refused_by_default_with_an_answer(swift_worker):
    hostname = "shutdown-refused@interop"
    process, log = swift_worker(hostname=hostname)
    wait_for_remote_control(hostname)
    status, out = celery_cli("control", "shutdown", "-d", hostname, "--json", "--timeout", "20")
    [reply] = json.loads(out.strip().splitlines()[-1])
    assert 'remote_control = "full"' in reply[hostname]["error"], out
    assert "refused remote-control shutdown" in log.read_text()
    assert process.poll() is None
    assert app.control.ping(destination=[hostname], timeout=5) == [{hostname: {"ok": "pong"}}]


def test_celery_control_shutdown_stops_a_full_worker_warmly(swift_worker, queue):
    hostname = "shutdown-obeyed@interop"
    process, log = swift_worker("--remote-control", "full", hostname=hostname)
    wait_for_remote_control(hostname)
    assert app.send_task("demo.add", args=[2, 3], queue=queue).get(timeout=20) == 5
    # A Celery 5.7 worker answers shutdown with nothing, so its command line says so (and exits 69) for ours too.
    status, out = celery_cli("control", "shutdown", "-d", hostname)
    assert "No nodes replied" in out, out
    assert process.wait(timeout=60) == 0, log.read_text()
    assert "Got shutdown from remote: warm shutdown by remote control" in log.read_text()


def test_celery_control_time_limit_changes_the_limits_of_later_tasks(swift_worker, queue):
    hostname = "time-limited@interop"
    _, log = swift_worker("--remote-control", "full", hostname=hostname)
    wait_for_remote_control(hostname)
    status, out = celery_cli("control", "time_limit", "no.such.task", "1", "-d", hostname, "--json", "--timeout", "20")
    assert json.loads(out.strip().splitlines()[-1]) == [{hostname: {"error": "unknown task"}}], out
    status, out = celery_cli("control", "time_limit", "demo.soft_sleep", "0.3", "-d", hostname, "--json",
                             "--timeout", "20")
    assert json.loads(out.strip().splitlines()[-1]) == [{hostname: {"ok": "time limits set successfully"}}], out
    assert app.send_task("demo.soft_sleep", args=[30], queue=queue).get(timeout=20) == {"soft_time_limit_exceeded": True}
    # SOFT and HARD: the hard limit stops a handler that ignores cancellation, registered without any limit.
    status, out = celery_cli("control", "time_limit", "demo.stubborn_sleep", "0", "0.5", "-d", hostname, "--json",
                             "--timeout", "20")
    assert json.loads(out.strip().splitlines()[-1]) == [{hostname: {"ok": "time limits set successfully"}}], out
    stubborn = app.send_task("demo.stubborn_sleep", args=[3], queue=queue)
    try:
        stubborn.get(timeout=20)
        raise AssertionError("the hard limit set by remote control must stop the task")
    except Exception as error:
        assert type(error).__name__ == "TimeLimitExceeded", repr(error)
    assert "New time limits for tasks of type demo.stubborn_sleep: soft=none hard=0.5 s" in log.read_text()


def test_celery_control_time_limit_is_refused_by_default(swift_worker, queue):
    hostname = "time-limit-refused@interop"
    swift_worker(hostname=hostname)
    wait_for_remote_control(hostname)
    status, out = celery_cli("control", "time_limit", "demo.soft_sleep", "0.3", "-d", hostname, "--json",
                             "--timeout", "20")
    [reply] = json.loads(out.strip().splitlines()[-1])
    assert 'remote_control = "full"' in reply[hostname]["error"], out
    assert app.send_task("demo.soft_sleep", args=[0.5], queue=queue).get(timeout=20) == 0.5
