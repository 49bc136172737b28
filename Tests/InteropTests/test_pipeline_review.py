"""Review of the staged per-task path (issue 13): worker log lines that the fault tests' bookkeeping reads."""
from celeryapp import app
from conftest import PARKED, binary, delay_repeats


def test_a_retry_is_counted_as_parked_by_the_fault_tests_log_reader(processes, queue):
    """conftest.PARKED counts each trip of a task through a delay queue (an eta ahead, or a retry) from the worker's
    log, and `delay_repeats` uses that count to excuse extra answers of a task as RabbitMQ's at-least-once
    dead-lettering. At b57ba69 a retry logged `retry 1/3 in 1.0 s: ...`; if the retry line no longer matches, every
    retried task looks like a delay queue handed it back twice, and assert_nothing_lost excuses one duplicate answer
    of every retried task."""
    _, log = processes.start("worker", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                        "--hostname", "parked@review"], f"consuming {queue}")
    result = app.send_task("demo.flaky", args=[1], queue=queue)
    assert result.get(timeout=60) == 1
    text = log.read_text()
    assert f"task_id={result.id} [AMQPTasks] retry" in text, text
    parked = [m.group(1) for m in PARKED.finditer(text)]
    assert parked.count(result.id) == 1, f"PARKED found {parked.count(result.id)} parkings of the retried task in:\n{text}"
    assert delay_repeats(text)[result.id] == 0, f"a retried task counted as a delay-queue repeat:\n{text}"
