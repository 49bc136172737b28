"""Groups and chords across Celery and Swift: a Celery client's group on Swift workers, and a 100-member chord sent by
`amqp-task chord` (which exits at once) that survives two amqp-worker processes SIGKILLed mid-way."""
import json
import signal
import time
import uuid

import pytest
from celery import group, signature
from kombu import Connection

from celeryapp import app, broker_url
from conftest import amqp_task, binary


def test_a_celery_group_runs_on_swift_workers_with_the_group_id_in_every_result(swift_worker, queue):
    swift_worker("--concurrency", "4")
    job = group(signature("demo.add", args=(i, i), app=app, queue=queue) for i in range(10))
    result = job.apply_async()
    assert result.get(timeout=30) == [2 * i for i in range(10)]
    for index, child in enumerate(result.results):
        meta = child._cache
        assert meta is not None, f"member {index} has no result"
        assert meta["status"] == "SUCCESS"
        assert meta["group_id"] == result.id, f"member {index}'s result does not name its group: {meta}"


def test_a_celery_group_with_a_failing_member_raises_it_in_member_order(swift_worker, queue):
    swift_worker("--concurrency", "2")
    job = group([signature("demo.add", args=(1, 1), app=app, queue=queue),
                 signature("demo.fail", args=("member one",), app=app, queue=queue)])
    result = job.apply_async()
    with pytest.raises(ValueError, match="member one"):
        result.get(timeout=30)


def ready_count(name):
    with Connection(broker_url()) as connection:
        return connection.default_channel.queue_declare(name, passive=True).message_count


def exists(name):
    with Connection(broker_url()) as connection:
        try:
            connection.default_channel.queue_declare(name, passive=True)
            return True
        except Exception as error:  # amqp.exceptions.NotFound closes the channel
            if "NOT_FOUND" in str(error) or type(error).__name__ == "NotFound":
                return False
            raise


def test_a_chord_of_100_fires_once_in_order_after_its_sender_left_and_two_workers_were_killed(processes, queue):
    callbacks = f"interop.chordcb.{uuid.uuid4().hex[:8]}"
    reply_queue = f"interop.chordreply.{uuid.uuid4().hex[:8]}"
    with Connection(broker_url()) as connection:
        channel = connection.default_channel
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.queue_declare(callbacks, durable=True, auto_delete=False)
    killed = [
        processes.start(f"killed{n}", [binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--concurrency", "4",
                                       "--hostname", f"killed{n}@interop"], f"consuming {queue}")[0]
        for n in range(2)
    ]
    # 0.2 to 0.6 s each: the 8 slots need about 5 s for all, so the kill once 30 were taken finds members running.
    members = [[i, 0.2 + (i % 5) / 10] for i in range(100)]
    status, out, err = amqp_task("chord", "--task", "demo.sleep_value", "--each", json.dumps(members), "--queue", queue,
                                 "--callback", json.dumps({"task": "demo.echo", "options": {"queue": callbacks}}),
                                 "--reply-queue", reply_queue)
    assert status == 0, err
    sent = json.loads(out)
    assert len(sent["members"]) == 100 and sent["reply_queue"] == reply_queue

    deadline = time.time() + 60
    while ready_count(queue) > 70:
        assert time.time() < deadline, "the workers took fewer than 30 members in 60 s"
        time.sleep(0.02)
    for worker in killed:
        worker.send_signal(signal.SIGKILL)
    for worker in killed:
        worker.wait(timeout=30)

    _, finisher_log = processes.start("finisher", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                                   "--concurrency", "4", "--hostname", "finisher@interop"],
                                      f"consuming {queue}")
    chord_queue = f"amqp-tasks.chord.{sent['chord']}"
    deadline = time.time() + 90
    while exists(chord_queue):
        assert time.time() < deadline, f"{chord_queue} still exists: the chord did not finish"
        time.sleep(0.1)
    # Nobody consumes the callback queue yet: exactly one callback was sent.
    assert ready_count(callbacks) == 1
    assert "(redelivered)" in finisher_log.read_text(), "the killed workers' running members came again"

    processes.start("callbacks", [binary("amqp-worker"), "--demo-tasks", "--queue", callbacks,
                                  "--hostname", "callbacks@interop"], f"consuming {callbacks}")
    status, out, err = amqp_task("result", sent["callback"], "--reply-queue", reply_queue, "--timeout", "30")
    assert status == 0, err
    answer = json.loads(out)
    assert answer["status"] == "SUCCESS"
    assert answer["result"] == [list(range(100))]
    with Connection(broker_url()) as connection:
        for name in (callbacks, reply_queue):
            connection.default_channel.queue_delete(name)


def test_a_failing_member_fails_the_chord_and_runs_its_errback_once(swift_worker, queue):
    errbacks = f"interop.chorderr.{uuid.uuid4().hex[:8]}"
    reply_queue = f"interop.chordreply.{uuid.uuid4().hex[:8]}"
    with Connection(broker_url()) as connection:
        connection.default_channel.queue_declare(errbacks, durable=True, auto_delete=False)
    swift_worker("--concurrency", "4")
    members = [{"task": "demo.add", "args": [i, 0]} for i in range(20)]
    members[7] = {"task": "demo.fail", "args": ["member seven"]}
    status, out, err = amqp_task("chord", "--signatures", json.dumps(members), "--queue", queue,
                                 "--callback", "demo.echo",
                                 "--errback", json.dumps({"task": "demo.echo", "options": {"queue": errbacks}}),
                                 "--reply-queue", reply_queue)
    assert status == 0, err
    sent = json.loads(out)
    status, out, err = amqp_task("result", sent["callback"], "--reply-queue", reply_queue, "--timeout", "30")
    assert status == 1, (out, err)
    answer = json.loads(out)
    assert answer["status"] == "FAILURE"
    assert answer["result"]["exc_type"] == "ChordError"
    assert sent["members"][7] in answer["result"]["exc_message"][0]
    assert "member seven" in answer["result"]["exc_message"][0]
    # The errback is in the same transaction as the FAILURE; nobody consumes its queue: exactly one was sent.
    assert ready_count(errbacks) == 1
    with Connection(broker_url()) as connection:
        message = connection.default_channel.basic_get(errbacks, no_ack=True)
        assert json.loads(message.body)[0] == [sent["callback"]], "the errback is called with the callback's id"
        for name in (errbacks, reply_queue):
            connection.default_channel.queue_delete(name)


def test_a_chain_built_in_swift_runs_on_celery_workers(celery_worker, queue):
    celery_worker()
    steps = [{"task": "py.add", "args": [1, 2]}, {"task": "py.add", "args": [3]}, {"task": "py.add", "args": [4]}]
    status, out, err = amqp_task("chain", "--signatures", json.dumps(steps), "--queue", queue, "--wait", "--timeout", "60")
    assert status == 0, err
    assert json.loads(out)["result"] == 10


def test_a_chain_built_in_swift_runs_on_swift_workers_with_an_immutable_last_step(swift_worker, queue):
    swift_worker()
    steps = [{"task": "demo.add", "args": [1, 2]}, {"task": "demo.add", "args": [3]},
             {"task": "demo.echo", "args": ["ignores the sum"], "immutable": True}]
    status, out, err = amqp_task("chain", "--signatures", json.dumps(steps), "--queue", queue, "--wait", "--timeout", "60")
    assert status == 0, err
    assert json.loads(out)["result"] == ["ignores the sum"]
