"""Fault tests on the local broker: a broker restart and connections closed by the broker in the middle of 10,000
tasks of every kind (plain, countdown, retry, exec handler, failing). Each checks that every task id the client was
told was sent (confirmed) is answered with its own right answer, that every task's extra answers are explained by
that task's redeliveries or by publishes the client repeated, that the task, dead-letter and delay queues end
empty, and that no task was redelivered more often than workers lost their connections: at least once, nothing
lost, nothing loops.

The faults that the assertions count come at pauses of the client (after known batches), never after a guessed
time: what a test asserts depends on what it did, not on how long the run lasted."""
import random
import subprocess
import time

import pytest

from conftest import BROKER, assert_nothing_lost, assert_nothing_loops, binary, broker
from faultclient import FaultClient, exec_handler_option


@pytest.fixture
def running_broker():
    """The local broker, started again after the test whatever the test did to it."""
    yield
    broker("start")


def start_workers(processes, queue, count, tmp_path, extra=()):
    """`count` amqp-workers with the demo tasks and the fault client's exec handler; returns their log paths."""
    logs = []
    for n in range(count):
        _, log = processes.start(f"worker{n}", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                                "--hostname", f"fault{n}-{time.time_ns()}@faults",
                                                *exec_handler_option(tmp_path),
                                                *(extra[n] if n < len(extra) else ())],
                                 f"consuming {queue}")
        logs.append(log)
    return logs


def connections(name_part):
    """Pids of the broker's connections whose client properties contain `name_part`."""
    out = broker("ctl", "list_connections", "pid", "client_properties", "--quiet", "--no-table-headers")
    return [line.split("\t")[0] for line in out.splitlines() if name_part in line]


def client_connections():
    """Connections our TaskClients opened (named "amqp-tasks client <pid> <reply queue>")."""
    return connections("amqp-tasks client")


def worker_connections():
    return connections("amqp-worker fault")


def close_connections(pids, why):
    """Asks the broker to close each connection (one already gone is no error); returns how many were asked."""
    for pid in pids:
        broker("ctl", "close_connection", pid, why, check=False, timeout=60)
    return len(pids)


def consumers_of(queue):
    out = broker("ctl", "list_queues", "name", "consumers", "--quiet", "--no-table-headers")
    for line in out.splitlines():
        name, _, consumers = line.partition("\t")
        if name == queue:
            return int(consumers)
    return 0


def wait_for_workers(queue, count, seconds=120):
    """Waits until `count` workers each have one connection and consume `queue` again."""
    deadline = time.time() + seconds
    while not (len(worker_connections()) == count and consumers_of(queue) == count):
        if time.time() > deadline:
            pytest.fail(f"{count} workers did not come back: connections {worker_connections()}, "
                        f"consumers {consumers_of(queue)}")
        time.sleep(0.2)


def wait_for_client_connection(seconds=60):
    """The paused client's connection: it had its batch confirmed, so it is connected, unless a random close came
    just as it paused; then it reconnects at once (its result receiver does)."""
    deadline = time.time() + seconds
    while not (pids := client_connections()):
        if time.time() > deadline:
            pytest.fail(f"the paused client has no connection after {seconds} s")
        time.sleep(0.1)
    return pids


def worker_logs(paths):
    return "".join(path.read_text() for path in paths)


def test_broker_restart_in_the_middle_of_ten_thousand_tasks(running_broker, processes, queue, tmp_path):
    logs = start_workers(processes, queue, 3, tmp_path)
    main = FaultClient(processes, tmp_path, "main", queue, 10000, batch=200, pause_after=[20])
    # A second client that may not wait: it must fail with a clear TaskClientError.timedOut, never report an unconfirmed send.
    impatient = FaultClient(processes, tmp_path, "impatient", f"{queue}.impatient", 1_000_000, batch=50, timeout=5,
                            window=1, pause_after=[1], kinds="trace", await_drain=False)
    main.wait_paused(20)  # 4,000 of 10,000 tasks confirmed: the restart comes in the middle of the run
    impatient.wait_paused(1)
    impatient_replies = impatient.reply_queue
    broker("stop")
    try:
        # Both send while the broker is away: the main client rides it out, the impatient one gives up.
        main.release()
        impatient.release()
        impatient.process.wait(timeout=60)
    finally:
        broker("start")
    report = main.finish()
    assert_nothing_lost(report, 10000, worker_logs(logs))
    assert "reconnected to the broker" in main.err, "the client lost its connection and came back"
    assert impatient.process.returncode == 1, impatient.err[-2000:]
    assert "was not confirmed by the broker after" in impatient.err, impatient.err[-2000:]
    log_text = worker_logs(logs)
    assert log_text.count("reconnecting in") >= 3, "the workers lost the broker and came back"
    # Each worker held at most one task when the broker stopped; the restart itself may flag recovered messages.
    assert_nothing_loops(log_text, worker_losses=3)
    broker("ctl", "delete_queue", f"{queue}.impatient", check=False)
    broker("ctl", "delete_queue", impatient_replies, check=False)


def test_connections_closed_during_confirmed_publishes_lose_no_task(processes, queue, tmp_path):
    # One worker sends events: its event heartbeats must not keep it from reconnecting.
    logs = start_workers(processes, queue, 3, tmp_path, extra=[("-E",)])
    pauses = [10, 20, 30, 40, 50, 60, 70, 80]  # of 100 batches of 100 tasks
    client = FaultClient(processes, tmp_path, "main", queue, 10000, batch=100, pause_after=pauses)
    worker_closes_at_pauses = 0
    worker_closes = 0  # every close the test asked for, at pauses or not: the bound on redeliveries
    next_random_close = [time.time() + random.uniform(0.3, 1.5)]

    def close_at_random():
        """Extra closes while the client publishes (mid-publish, mid-confirm): they exercise more, but no
        assertion depends on how many there were, except as an upper bound on redeliveries."""
        nonlocal worker_closes
        if time.time() < next_random_close[0]:
            return
        next_random_close[0] = time.time() + random.uniform(0.3, 1.5)
        close_connections(client_connections(), "fault test: dropped client connection mid-run")
        if random.random() < 0.3:
            worker_closes += close_connections(worker_connections()[:1], "fault test: dropped worker connection")

    for number, batch in enumerate(pauses):
        client.wait_paused(batch, while_waiting=close_at_random)
        pids = wait_for_client_connection()
        close_connections(pids, f"fault test: dropped client connection after batch {batch}")
        if number % 2 == 0:
            wait_for_workers(queue, 3)  # a worker that is connected, so the close surely breaks something
            worker_closes += close_connections(worker_connections()[:1], "fault test: dropped worker connection")
            worker_closes_at_pauses += 1
        client.release()
    report = client.finish()
    log_text = worker_logs(logs)
    assert_nothing_lost(report, 10000, log_text)
    # Every close at a pause cut the connection the next batch needed: one reconnection each, at least.
    assert client.err.count("reconnected to the broker") >= len(pauses), client.err[-3000:]
    assert log_text.count("reconnecting in") >= worker_closes_at_pauses, "each closed worker came back"
    assert_nothing_loops(log_text, worker_losses=worker_closes)
    # Every worker came back: three consumers again.
    wait_for_workers(queue, 3)


def test_tasks_waiting_in_delay_queues_survive_a_broker_restart(running_broker, processes, queue, tmp_path):
    """A countdown waits in a delay queue (amqp-tasks.delay.*) after the worker acked the message it came in: the
    delay queue then holds the task's only copy. Countdown tasks (1-4 s) are sent and parked there while the broker
    shuts down, so delays end before, during and after the shutdown; each confirmed task must still reach its queue
    and be answered. (RabbitMQ dead-letters from a classic queue at most once: a message that expires while the
    node stops its queues can be dropped.)"""
    # Many consumers, so the workers keep up and park most countdowns rather than find them already due.
    logs = start_workers(processes, queue, 2, tmp_path, extra=[("--concurrency", "6")] * 2)
    client = FaultClient(processes, tmp_path, "client", queue, 4000, batch=20, pause_after=[50], kinds="countdown")
    client.wait_paused(50)  # 1,000 countdown tasks confirmed, many of them parked in delay queues
    stopping = subprocess.Popen([str(BROKER), "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client.release()  # sends (and the workers park) countdowns while the node shuts down
        assert stopping.wait(timeout=300) == 0, "Deploy/broker stop failed"
    finally:
        broker("start")
    report = client.finish()
    assert_nothing_lost(report, 4000, worker_logs(logs))
