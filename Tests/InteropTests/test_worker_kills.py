"""Workers that die or stop while they hold tasks: 10,000 tasks of every kind with Swift workers killed by SIGKILL
and started again, and a warm shutdown whose grace period ends while a task still runs. A dead or stopping worker's
unacked task is redelivered to another and answered once, with its own answer: nothing lost, nothing failed for it."""
import random
import signal
import time

from celeryapp import app
from conftest import assert_nothing_lost, assert_nothing_loops, binary
from faultclient import FaultClient, exec_handler_option


def wait_for_log(log, text, failure, seconds=30):
    """Waits until `text` is in the log (a safety-net deadline, not a measurement)."""
    deadline = time.time() + seconds
    while text not in log.read_text():
        assert time.time() < deadline, f"{failure}:\n{log.read_text()}"
        time.sleep(0.05)


def test_ten_thousand_tasks_survive_workers_killed_with_sigkill(processes, queue, tmp_path):
    logs = []

    def start(n):
        process, log = processes.start(f"worker{n}-{time.time_ns()}", [
            binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", f"w{n}-{time.time_ns()}@kills",
            *exec_handler_option(tmp_path)], f"consuming {queue}")
        logs.append(log)
        return process

    workers = {n: start(n) for n in range(3)}
    kills = 0

    def kill_one():
        nonlocal kills
        victim = random.choice(list(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=30)
        kills += 1
        workers[victim] = start(victim)

    next_random_kill = [time.time() + random.uniform(0.5, 2)]

    def kill_at_random():
        """Kills while the client sends and the workers run tasks; they only raise the bound on redeliveries."""
        if time.time() >= next_random_kill[0]:
            kill_one()
            next_random_kill[0] = time.time() + random.uniform(0.5, 2)

    pauses = [10, 20, 30, 40]  # of 50 batches of 200 tasks
    client = FaultClient(processes, tmp_path, "client", queue, 10000, batch=200, pause_after=pauses)
    for batch in pauses:
        client.wait_paused(batch, while_waiting=kill_at_random)
        kill_one()
        client.release()
    report = client.finish()
    worker_logs = "".join(log.read_text() for log in logs)
    assert_nothing_lost(report, 10000, worker_logs)
    assert_nothing_loops(worker_logs, worker_losses=kills)


def test_a_task_still_running_when_the_grace_period_ends_is_requeued_and_answered_by_another_worker(
        processes, queue, tmp_path):
    first, first_log = processes.start("first", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                                 "--hostname", "first@grace", "--grace", "0.5"], f"consuming {queue}")
    result = app.send_task("demo.sleep", args=[10], queue=queue)
    wait_for_log(first_log, f"task_id={result.id} [AMQPTasks] received", "the first worker never took the task")
    # SIGTERM while the 10 s task runs: its 0.5 s grace period ends long before the task would.
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, first_log.read_text()
    _, second_log = processes.start("second", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                               "--hostname", "second@grace"], f"consuming {queue}")
    # rpc:// delivers the first final state: a FAILURE recorded by the stopping worker would be raised here.
    assert result.get(timeout=60) == 10
    assert result.state == "SUCCESS"
    first_text, second_text = first_log.read_text(), second_log.read_text()
    assert "interrupted by shutdown; requeueing the task" in first_text, first_text
    assert f"task_id={result.id} [AMQPTasks] failed" not in first_text, first_text
    assert f"task_id={result.id} [AMQPTasks] received (redelivered)" in second_text, second_text
    # The log line follows the recorded result (a middleware's `recorded` hook writes it): wait for it.
    wait_for_log(second_log, f"task_id={result.id} [AMQPTasks] succeeded", "the second worker never logged success")


def test_a_second_sigterm_is_a_cold_shutdown_whose_running_task_another_worker_answers(processes, queue, tmp_path):
    """Celery's second Ctrl-C: the first SIGTERM starts a warm shutdown whose grace period (10 minutes here) would
    let the 30 s task finish; the second ends it at once. The worker exits non-zero while the task still runs (its
    answer comes later, from the second worker), having requeued it, never acked or answered it."""
    first, first_log = processes.start("first", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                                 "--hostname", "first@cold", "--grace", "600"], f"consuming {queue}")
    result = app.send_task("demo.sleep", args=[30], queue=queue)
    wait_for_log(first_log, f"task_id={result.id} [AMQPTasks] received", "the first worker never took the task")
    first.send_signal(signal.SIGTERM)
    wait_for_log(first_log, "warm shutdown", "the first SIGTERM was not taken")
    assert first.poll() is None, "a warm shutdown with 600 s of grace ended while its 30 s task ran"
    sent = time.monotonic()
    first.send_signal(signal.SIGTERM)
    status = first.wait(timeout=25)  # a safety net: the task itself would end after 30 s
    print(f"the cold shutdown took {time.monotonic() - sent:.2f} s")
    first_text = first_log.read_text()
    assert status != 0, first_text
    assert "cold shutdown" in first_text, first_text
    assert "interrupted by shutdown; requeueing the task" in first_text, first_text
    assert f"task_id={result.id} [AMQPTasks] succeeded" not in first_text, first_text
    assert not result.ready(), "the task was answered by the worker that was shut down"
    _, second_log = processes.start("second", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                               "--hostname", "second@cold"], f"consuming {queue}")
    assert result.get(timeout=120) == 30
    assert result.state == "SUCCESS"
    second_text = second_log.read_text()
    assert f"task_id={result.id} [AMQPTasks] received (redelivered)" in second_text, second_text
    # The log line follows the recorded result (a middleware's `recorded` hook writes it): wait for it.
    wait_for_log(second_log, f"task_id={result.id} [AMQPTasks] succeeded", "the second worker never logged success")
