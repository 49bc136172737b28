"""A 3-node RabbitMQ cluster with a quorum queue (Deploy/cluster, started by Deploy/test): kill -9 the node that
leads the queue while Swift workers run its tasks; every task still completes, and the workers move to the other
nodes."""
import os
import pathlib
import subprocess
import time

import pytest
from celery import Celery
from kombu import Queue

from conftest import REPO, binary

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
    if not all(f"amqptasks-{5700 + n}@localhost" in status for n in (1, 2, 3)):
        pytest.fail("the 3-node cluster is not running: Deploy/test starts it (Deploy/cluster start)")
    yield urls
    for n in (1, 2, 3):  # whatever a test killed comes back for the next one
        cluster("restart", str(n))


def leader_of(queue):
    out = cluster("ctl", "1", "list_queues", "name", "leader", "--quiet", "--no-table-headers")
    for line in out.splitlines():
        name, _, leader = line.partition("\t")
        if name == queue:
            return int(leader.strip().split("@")[0].rsplit("-", 1)[1]) - 5700
    pytest.fail(f"queue {queue} has no leader in:\n{out}")


def test_killing_the_quorum_leader_loses_no_task(nodes, processes, tmp_path):
    queue = f"fault.quorum.{os.getpid()}"
    config = tmp_path / "cluster.toml"
    config.write_text(f"""
[broker]
url = "{",".join(nodes)}"
heartbeat = 5

[[queues]]
name = "{queue}"
type = "quorum"
delivery_limit = 10

[worker]
queues = ["{queue}"]
concurrency = 2
""")
    env = {"AMQP_URL": ""}
    subprocess.run([binary("amqp-task"), "declare", "--config", str(config)], check=True, env={**os.environ, **env},
                   capture_output=True)
    leader = leader_of(queue)
    # The client talks to a node that stays up; each worker starts on the leader, so both must move.
    client_node = next(n for n in (1, 2, 3) if n != leader)
    app = Celery("fault", broker=nodes[client_node - 1], backend="rpc://")
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    # Celery declares the queue it sends to: declare it as the file does, or RabbitMQ answers 406.
                    task_queues=[Queue(queue, queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 10,
                                                                "x-dead-letter-exchange": f"{queue}.dead"})])
    leader_first = ",".join(nodes[leader - 1:] + nodes[:leader - 1])
    for name in ("w1", "w2"):
        processes.start(name, [binary("amqp-worker"), "--config", str(config), "--url", leader_first, "--demo-tasks",
                               "--hostname", f"{name}@cluster"], f"consuming {queue}")
    total = 600
    results = [app.send_task("demo.sleep", args=[0.01], queue=queue) for _ in range(total)]
    time.sleep(1.5)
    cluster("kill", str(leader))
    time.sleep(8)
    cluster("restart", str(leader))
    done = set()
    for result in results:
        assert result.get(timeout=180) == 0.01
        done.add(result.id)
    assert len(done) == total, "every task answered"
    logs = "".join((tmp_path / f"{name}.log").read_text() for name in ("w1", "w2"))
    assert "reconnecting" in logs, "the workers lost their node and reconnected elsewhere"
