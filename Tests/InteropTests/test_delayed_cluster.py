"""Delayed tasks on the 3-node cluster (Deploy/cluster, started by Deploy/test): 10,000 tasks with countdowns of
0-20 s wait in the quorum delay levels (celery_delayed_0..27) while the node leading most of them is killed (-9):
every task runs, none before its eta."""
import collections
import json
import os
import subprocess

from conftest import assert_nothing_lost, binary
from test_cluster import cluster, kill_node_mid_run, nodes, quorum_config  # noqa: F401 (nodes is a fixture)


def level_leaders():
    """{node number: how many delay levels it leads}."""
    out = cluster("ctl", "1", "list_queues", "name", "leader", "--quiet", "--no-table-headers")
    base = int(os.environ.get("AMQP_CLUSTER_PORT", "5701"))
    leaders = collections.Counter()
    for line in out.splitlines():
        name, _, leader = line.partition("\t")
        if name.startswith("celery_delayed_") and leader.strip():
            leaders[int(leader.strip().split("@")[0].rsplit("-", 1)[1]) - base + 1] += 1
    return leaders


def test_killing_the_leader_of_the_delay_levels_loses_no_delayed_task_and_runs_none_early(nodes, processes, tmp_path):
    queue = f"fault.delayed.{os.getpid()}"
    config = quorum_config(tmp_path / "delayed.toml", nodes, queue, concurrency=8)
    env = {**os.environ, "AMQP_URL": ""}
    subprocess.run([binary("amqp-task"), "declare", "--config", str(config)], check=True, env=env, capture_output=True)
    # The first worker declares the levels (if no one did yet); they are then led by some node.
    processes.start("w1", [binary("amqp-worker"), "--config", str(config), "--url", ",".join(nodes), "--demo-tasks",
                           "--hostname", "w1@cluster"], f"consuming {queue}")
    leaders = level_leaders()
    assert sum(leaders.values()) == 28, leaders
    leader = leaders.most_common(1)[0][0]
    leader_first = ",".join(nodes[leader - 1:] + nodes[:leader - 1])
    # The second worker and the client start on that node, so they must move when it dies.
    processes.start("w2", [binary("amqp-worker"), "--config", str(config), "--url", leader_first, "--demo-tasks",
                           "--hostname", "w2@cluster"], f"consuming {queue}")
    total = 10000
    err_path = tmp_path / "client.err"
    # 50 batches of 200; the client pauses after 25, so the kill comes while thousands of tasks wait in the levels.
    client = subprocess.Popen([binary("amqp-tasks-fault-client"), leader_first, queue, str(total), "200", "240"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(err_path, "w"), text=True,
                              env={**os.environ, "FAULT_CLIENT_PAUSE_AFTER": "25", "FAULT_CLIENT_KINDS": "when"})
    out = kill_node_mid_run(client, err_path, leader, paused_after=25)
    err = err_path.read_text()
    assert client.returncode == 0, err[-3000:]
    logs = "".join((tmp_path / f"{name}.log").read_text() for name in ("w1", "w2"))
    # Every task answered, and right: `when` answers carry the handler's start and the task's eta, and a start
    # before the eta is a wrong answer. A task answered twice must be explained by a redelivery, a repeated publish
    # or the levels' at-least-once dead-lettering handing it on twice (the worker logs say which).
    assert_nothing_lost(json.loads(out.strip().splitlines()[-1]), total, logs)
    assert "reconnected to the broker" in err, "the client lost its node and moved to another"
    assert "came through the delay levels" in logs
