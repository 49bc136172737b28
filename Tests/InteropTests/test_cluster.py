"""A 3-node RabbitMQ cluster with a quorum queue (Deploy/cluster, started by Deploy/test): kill -9 the node that
leads the queue in the middle of 20,000 tasks; every confirmed task is answered, and the client and the workers move
to the other nodes. Celery's client sends to the same kind of queue."""
import json
import os
import pathlib
import subprocess
import time

import pytest
from celery import Celery
from kombu import Queue

from conftest import REPO, assert_nothing_lost, binary

CLUSTER = REPO / "Deploy" / "cluster"


def cluster(*args, check=True):
    result = subprocess.run([str(CLUSTER), *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"Deploy/cluster {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture
def nodes():
    urls = cluster("urls").split()
    status = cluster("status", check=False)
    base = int(os.environ.get("AMQP_CLUSTER_PORT", "5701"))  # as Deploy/cluster numbers its nodes
    if not all(f"amqptasks-{base + n - 1}@localhost" in status for n in (1, 2, 3)):
        pytest.fail("the 3-node cluster is not running: Deploy/test starts it (Deploy/cluster start)")
    yield urls
    for n in (1, 2, 3):  # whatever a test killed comes back for the next one
        cluster("restart", str(n))


def leader_of(queue):
    out = cluster("ctl", "1", "list_queues", "name", "leader", "--quiet", "--no-table-headers")
    for line in out.splitlines():
        name, _, leader = line.partition("\t")
        if name == queue:
            return int(leader.strip().split("@")[0].rsplit("-", 1)[1]) - int(os.environ.get("AMQP_CLUSTER_PORT", "5701")) + 1
    pytest.fail(f"queue {queue} has no leader in:\n{out}")


def quorum_config(path, nodes, queue, concurrency=1):
    """A configuration file: every node, and `queue` as a quorum queue consumed by the worker."""
    path.write_text(f"""
[broker]
url = "{",".join(nodes)}"
heartbeat = 5

[[queues]]
name = "{queue}"
type = "quorum"
delivery_limit = 10

[worker]
queues = ["{queue}"]
concurrency = {concurrency}
""")
    return path


def test_celery_client_sends_to_a_quorum_queue_run_by_swift_workers(nodes, processes, tmp_path):
    """Celery's client declares the quorum queue it sends to with the same arguments as our file does."""
    queue = f"interop.quorum.{os.getpid()}"
    config = quorum_config(tmp_path / "quorum.toml", nodes, queue)
    # --url: Deploy/test exports AMQP_URL (the single local broker), which would override the file's cluster URLs.
    processes.start("w", [binary("amqp-worker"), "--config", str(config), "--url", ",".join(nodes), "--demo-tasks",
                          "--hostname", "q@cluster"], f"consuming {queue}")
    app = Celery("quorum", broker=nodes[1], backend="rpc://", set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    # Celery declares the queue it sends to: declare it as the file does, or RabbitMQ answers 406.
                    task_queues=[Queue(queue, queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 10,
                                                                "x-dead-letter-exchange": f"{queue}.dead"})])
    results = [app.send_task("demo.add", args=[i, 1], queue=queue) for i in range(50)]
    assert [r.get(timeout=60) for r in results] == [i + 1 for i in range(50)]


def kill_node_mid_run(client, err_path, node, paused_after):
    """Once the fault client (started with FAULT_CLIENT_PAUSE_AFTER=`paused_after`) pauses, kills -9 `node`, lets the
    client go on, and restarts the node once the client has moved to another node (the event, not a guessed time:
    while it is down a queue may nack publishes, if it has no majority without it, and the client retries them).
    Returns the client's stdout when it ends."""
    deadline = time.time() + 300
    while f"fault-client: paused after batch {paused_after}" not in err_path.read_text():
        assert client.poll() is None and time.time() < deadline, err_path.read_text()[-3000:]
        time.sleep(0.1)
    cluster("kill", str(node))
    client.stdin.write("go\n")
    client.stdin.flush()
    deadline = time.time() + 300
    while "reconnected to the broker" not in err_path.read_text() and client.poll() is None:
        assert time.time() < deadline, err_path.read_text()[-3000:]
        time.sleep(0.2)
    cluster("restart", str(node))
    out, _ = client.communicate(timeout=600)
    return out


def test_killing_the_quorum_leader_loses_no_task(nodes, processes, tmp_path):
    queue = f"fault.quorum.{os.getpid()}"
    config = quorum_config(tmp_path / "cluster.toml", nodes, queue, concurrency=2)
    env = {**os.environ, "AMQP_URL": ""}
    subprocess.run([binary("amqp-task"), "declare", "--config", str(config)], check=True, env=env, capture_output=True)
    leader = leader_of(queue)
    # Client and workers all start on the leader, so all of them must move when it dies.
    leader_first = ",".join(nodes[leader - 1:] + nodes[:leader - 1])
    for name in ("w1", "w2"):
        processes.start(name, [binary("amqp-worker"), "--config", str(config), "--url", leader_first, "--demo-tasks",
                               "--hostname", f"{name}@cluster"], f"consuming {queue}")
    total = 20000
    err_path = tmp_path / "client.err"
    # The client pauses after 20 of its 100 batches, so the kill comes in the middle of the run whatever the speed.
    client = subprocess.Popen([binary("amqp-tasks-fault-client"), leader_first, queue, str(total), "200", "300"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(err_path, "w"), text=True,
                              env={**os.environ, "FAULT_CLIENT_PAUSE_AFTER": "20"})
    out = kill_node_mid_run(client, err_path, leader, paused_after=20)
    err = err_path.read_text()
    assert client.returncode == 0, err[-3000:]
    assert_nothing_lost(json.loads(out.strip().splitlines()[-1]), total)
    assert "reconnected to the broker" in err, "the client lost its node and moved to another"
    logs = "".join((tmp_path / f"{name}.log").read_text() for name in ("w1", "w2"))
    assert "reconnecting" in logs, "the workers lost their node and reconnected elsewhere"
