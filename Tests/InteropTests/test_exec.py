"""amqp-worker --exec as Celery sees it: revoke --terminate of an exec task, and the environment a command gets."""
import os
import time

from celeryapp import app


def wait_until_active(hostname, task_id, seconds=30):
    """Waits until the worker lists the task in `inspect active` (it runs), asking Celery's remote control."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        active = app.control.inspect(destination=[hostname], timeout=1).active() or {}
        if any(task["id"] == task_id for task in active.get(hostname, [])):
            return
    raise AssertionError(f"{hostname} never listed {task_id} as active")


def test_celery_revoke_terminate_of_an_exec_task_is_revoked_not_failed(swift_worker, queue):
    # revoke --terminate is destructive: a worker takes it only with remote control "all".
    swift_worker("--exec", "interop.slow=/bin/sleep 60", "--remote-control", "all", hostname="exec-revoker@interop")
    running = app.send_task("interop.slow", queue=queue)
    wait_until_active("exec-revoker@interop", running.id)
    app.control.revoke(running.id, terminate=True, destination=["exec-revoker@interop"])
    try:
        running.get(timeout=30)
        raise AssertionError("a terminated task must not succeed")
    except Exception as error:
        assert type(error).__name__ == "TaskRevokedError", f"{type(error).__name__}: {error}"


def test_an_exec_command_does_not_see_amqp_url_unless_configured(swift_worker, queue, tmp_path):
    url = os.environ.get("AMQP_URL", "")
    assert ":" in url and "@" in url, "the interop tests run with AMQP_URL set (Deploy/test sets it), password included"
    first, _ = swift_worker("--exec", "interop.env=/usr/bin/env")
    environment = app.send_task("interop.env", queue=queue).get(timeout=30)
    assert "PATH=" in environment
    assert "AMQP_URL" not in environment, "the worker's broker password must not reach the command"
    first.terminate()  # the next worker, on the same queue, is the only one to take the next task
    assert first.wait(timeout=30) == 0

    config = tmp_path / "amqp-tasks.toml"
    config.write_text('[tasks."interop.inherits"]\ncommand = ["/usr/bin/env"]\ninherit_env = ["AMQP_URL"]\n')
    swift_worker("--config", str(config), hostname="exec-inherits@interop")
    environment = app.send_task("interop.inherits", queue=queue).get(timeout=30)
    assert f"AMQP_URL={url}" in environment.splitlines(), "inherit_env passes what the configuration names"
