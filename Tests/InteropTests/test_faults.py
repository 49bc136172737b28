"""Fault tests on the local broker: a broker restart and connections closed by the broker in the middle of 10,000
tasks. Each checks that every task id the client was told was sent (confirmed) is answered, and that every extra
answer is a redelivery (the worker saw `redelivered`) or a publish the client repeated after losing a connection
before its confirm: at least once, nothing lost."""
import json
import subprocess
import time

import pytest

from celeryapp import broker_url
from conftest import REPO, assert_nothing_lost, binary

BROKER = REPO / "Deploy" / "broker"


def broker(*args, check=True, timeout=300):
    result = subprocess.run([str(BROKER), *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"Deploy/broker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture
def running_broker():
    """The local broker, started again after the test whatever the test did to it."""
    yield
    broker("start")


def start_workers(processes, queue, count, extra=()):
    for n in range(count):
        processes.start(f"worker{n}", [binary("amqp-worker"), "--demo-tasks", "--queue", queue,
                                       "--hostname", f"fault{n}-{time.time_ns()}@faults",
                                       *(extra[n] if n < len(extra) else ())],
                        f"consuming {queue}")


def start_client(tmp_path, name, queue, count, batch=200, timeout=240, window=None):
    """The fault client (Tests/FaultClient): sends `count` demo.trace tasks, awaits every result."""
    args = [binary("amqp-tasks-fault-client"), broker_url(), queue, str(count), str(batch), str(timeout)]
    if window is not None:
        args.append(str(window))
    err = open(tmp_path / f"{name}.err", "w")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)


def finish(client, tmp_path, name, timeout=300):
    out, _ = client.communicate(timeout=timeout)
    err = (tmp_path / f"{name}.err").read_text()
    assert client.returncode == 0, f"the fault client failed:\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1]), err


def client_connections():
    """Pids of the connections our TaskClients opened (named "amqp-tasks client <reply queue>")."""
    out = broker("ctl", "list_connections", "pid", "client_properties", "--quiet", "--no-table-headers")
    return [line.split("\t")[0] for line in out.splitlines() if "amqp-tasks client" in line]


def worker_connections():
    out = broker("ctl", "list_connections", "pid", "client_properties", "--quiet", "--no-table-headers")
    return [line.split("\t")[0] for line in out.splitlines() if "amqp-worker fault" in line]


def consumers_of(queue):
    out = broker("ctl", "list_queues", "name", "consumers", "--quiet", "--no-table-headers")
    for line in out.splitlines():
        name, _, consumers = line.partition("\t")
        if name == queue:
            return int(consumers)
    return 0


def test_broker_restart_in_the_middle_of_ten_thousand_tasks(running_broker, processes, queue, tmp_path):
    start_workers(processes, queue, 3)
    main = start_client(tmp_path, "main", queue, 10000)
    # A second client that may not wait: it must fail with a clear SendFailure, never report an unconfirmed send.
    impatient = start_client(tmp_path, "impatient", f"{queue}.impatient", 1_000_000, batch=50, timeout=5, window=1)
    time.sleep(4)
    assert main.poll() is None, "the restart must come in the middle of the run"
    broker("stop")
    try:
        impatient.wait(timeout=60)
    finally:
        broker("start")
    report, err = finish(main, tmp_path, "main")
    assert_nothing_lost(report, 10000)
    assert "reconnected to the broker" in err, "the client lost its connection and came back"
    impatient_err = (tmp_path / "impatient.err").read_text()
    assert impatient.returncode == 1, impatient_err[-2000:]
    assert "was not confirmed by the broker after" in impatient_err, impatient_err[-2000:]
    logs = "".join((tmp_path / f"worker{n}.log").read_text() for n in range(3))
    assert "reconnecting" in logs, "the workers lost the broker and came back"
    broker("ctl", "delete_queue", f"{queue}.impatient", check=False)


def test_connections_closed_during_confirmed_publishes_lose_no_task(processes, queue, tmp_path):
    # One worker sends events: its event heartbeats must not keep it from reconnecting.
    start_workers(processes, queue, 3, extra=[("-E",)])
    client = start_client(tmp_path, "main", queue, 10000, batch=100)
    closed_clients = closed_workers = 0
    deadline = time.time() + 240
    while client.poll() is None and time.time() < deadline and closed_clients < 8:
        time.sleep(1.5)
        for pid in client_connections():
            broker("ctl", "close_connection", pid, "fault test: dropped client connection", check=False)
            closed_clients += 1
        if closed_clients % 2 == 0:
            for pid in worker_connections()[:1]:
                broker("ctl", "close_connection", pid, "fault test: dropped worker connection", check=False)
                closed_workers += 1
    report, err = finish(client, tmp_path, "main")
    assert_nothing_lost(report, 10000)
    assert closed_clients >= 3 and closed_workers >= 1, (closed_clients, closed_workers)
    assert err.count("reconnected to the broker") >= 3, err[-3000:]
    # Every worker came back: three consumers again.
    deadline = time.time() + 60
    while consumers_of(queue) < 3 and time.time() < deadline:
        time.sleep(0.5)
    assert consumers_of(queue) == 3
