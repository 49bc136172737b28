"""`--url` and `AMQP_URL` replace where the broker is and who logs in, never the configuration file's heartbeat,
connection timeout or TLS files: for amqp-worker, for amqp-task's own connection and for its task client. The broker's
own connection list (`rabbitmqctl list_connections client_properties timeout ssl`) is the witness: `timeout` is the
heartbeat the connection negotiated, in seconds; the connection's name is its client property `connection_name`."""
import json
import os
import pathlib
import subprocess
import time

import pytest

from conftest import REPO, binary, broker

PORT = int(os.environ.get("AMQP_BROKER_PORT", "5672"))
TLS_PORT = int(os.environ.get("AMQP_BROKER_TLS_PORT", "5671"))
TLS_DIR = pathlib.Path(os.environ.get("AMQP_BROKER_DIR", str(REPO / ".broker"))) / "tls"
URL = f"amqp://guest:guest@127.0.0.1:{PORT}/%2f"
# localhost, not 127.0.0.1: the server certificate names localhost, and the host name is verified.
TLS_URL = f"amqps://guest:guest@localhost:{TLS_PORT}/%2f"
# What the file says: a port nothing listens on, so a connection that works proves --url replaced the address.
NOWHERE = "amqp://nobody:wrong@127.0.0.1:1/%2f"
# Not the environment's broker URL: each test gives its own with --url (an empty AMQP_URL is ignored).
NO_AMQP_URL = {"AMQP_URL": ""}


def connections():
    """{connection name: (heartbeat timeout in seconds, over TLS)} as the broker lists them. The name a client gives
    (`connection_name`) is among its client properties; rabbitmqctl's `name` column is the peer address."""
    out = broker("ctl", "list_connections", "client_properties", "timeout", "ssl", "--formatter", "json", "--quiet")
    listed = {}
    for connection in json.loads(out or "[]"):
        names = [value for key, _, value in connection["client_properties"] if key == "connection_name"]
        if names:
            listed[names[0]] = (connection["timeout"], connection["ssl"])
    return listed


def wait_for_connection(matches, process, log, seconds=60):
    """The (name, (timeout, ssl)) of the first connection whose name `matches`; fails if `process` ends first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = [(name, value) for name, value in connections().items() if matches(name)]
        if found:
            return found[0]
        if process.poll() is not None:
            pytest.fail(f"the process ended ({process.returncode}) before its connection was listed:\n{log()}")
        time.sleep(0.2)
    pytest.fail(f"no matching connection after {seconds} s; listed: {connections()}\n{log()}")


def write_config(tmp_path, text):
    path = tmp_path / "amqp-tasks.toml"
    path.write_text(text)
    return str(path)


def tls_broker_section(url):
    return (f'[broker]\nurl = "{url}"\nheartbeat = 7\nca_file = "{TLS_DIR / "ca.pem"}"\n'
            f'cert_file = "{TLS_DIR / "client.pem"}"\nkey_file = "{TLS_DIR / "client.key"}"\n')


def start_worker_over(processes, queue, config, url, hostname):
    """An amqp-worker with `--config config --url url`, started once it consumes `queue`."""
    processes.start(
        "amqp-worker",
        [binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", hostname, "--config", config,
         "--url", url],
        f"consuming {queue}", env=NO_AMQP_URL)


def test_worker_url_keeps_the_files_heartbeat(processes, queue, tmp_path):
    config = write_config(tmp_path, f'[broker]\nurl = "{NOWHERE}"\nheartbeat = 7\n')
    hostname = f"override-{queue}@interop"
    start_worker_over(processes, queue, config, URL, hostname)
    listed = connections()
    assert f"amqp-worker {hostname}" in listed, listed
    assert listed[f"amqp-worker {hostname}"] == (7, False)


def test_worker_url_over_amqps_keeps_the_files_tls_files_and_heartbeat(processes, queue, tmp_path):
    # The file's own URL is wrong (nothing listens on port 1); the TLS files and heartbeat are what --url must keep:
    # without the file's CA the broker's certificate cannot be verified and the worker would never connect.
    config = write_config(tmp_path, tls_broker_section(f"amqps://nobody:wrong@localhost:1/%2f"))
    hostname = f"override-tls-{queue}@interop"
    start_worker_over(processes, queue, config, TLS_URL, hostname)
    listed = connections()
    assert listed.get(f"amqp-worker {hostname}") == (7, True), listed


def test_amqp_url_in_the_environment_keeps_the_files_heartbeat_for_the_worker(processes, queue, tmp_path):
    config = write_config(tmp_path, f'[broker]\nurl = "{NOWHERE}"\nheartbeat = 7\n')
    hostname = f"override-env-{queue}@interop"
    processes.start(
        "amqp-worker",
        [binary("amqp-worker"), "--demo-tasks", "--queue", queue, "--hostname", hostname, "--config", config],
        f"consuming {queue}", env={"AMQP_URL": URL})
    assert connections().get(f"amqp-worker {hostname}") == (7, False)


def start_amqp_task(tmp_path, name, args):
    log = tmp_path / f"{name}.log"
    handle = open(log, "w")
    process = subprocess.Popen([binary("amqp-task"), *args], stdout=handle, stderr=subprocess.STDOUT,
                               env={**os.environ, **NO_AMQP_URL})
    return process, handle, log


def stop(process, handle):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    handle.close()


@pytest.mark.parametrize("tls", [False, True], ids=["amqp", "amqps"])
def test_amqp_task_url_keeps_the_files_heartbeat(tmp_path, tls):
    config = write_config(
        tmp_path, tls_broker_section("amqps://nobody:wrong@localhost:1/%2f") if tls
        else f'[broker]\nurl = "{NOWHERE}"\nheartbeat = 7\n')
    process, handle, log = start_amqp_task(
        tmp_path, "amqp-task-events", ["events", "--config", config, "--url", TLS_URL if tls else URL])
    try:
        _, value = wait_for_connection(lambda name: name == f"amqp-task {process.pid}", process, log.read_text)
        assert value == (7, tls)
    finally:
        stop(process, handle)


def test_the_task_client_of_amqp_task_send_keeps_the_files_heartbeat(tmp_path, queue):
    # A queue nobody consumes (gone a minute after the test), so `send --wait` keeps its client connected.
    config = write_config(
        tmp_path,
        f'[broker]\nurl = "{NOWHERE}"\nheartbeat = 7\n\n[[queues]]\nname = "{queue}"\ndurable = false\n'
        f'arguments = {{ "x-expires" = 60000 }}\n')
    declared = subprocess.run([binary("amqp-task"), "declare", "--config", config, "--url", URL],
                              capture_output=True, text=True, timeout=90, env={**os.environ, **NO_AMQP_URL})
    assert declared.returncode == 0, declared.stderr
    process, handle, log = start_amqp_task(
        tmp_path, "amqp-task-send",
        ["send", "demo.add", "--args", "[1, 2]", "--queue", queue, "--wait", "--timeout", "300", "--config", config,
         "--url", URL])
    try:
        name, value = wait_for_connection(lambda name: name.startswith(f"amqp-tasks client {process.pid} "), process, log.read_text)
        assert value == (7, False), name
    finally:
        stop(process, handle)


def test_a_bad_url_is_refused_naming_it(tmp_path):
    config = write_config(tmp_path, f'[broker]\nurl = "{NOWHERE}"\nheartbeat = 7\n')
    for command in (["amqp-worker", "--demo-tasks"], ["amqp-task", "events"]):
        result = subprocess.run(
            [binary(command[0]), *command[1:], "--config", config, "--url", "http://guest:secret@h/"],
            capture_output=True, text=True, timeout=90, env={**os.environ, **NO_AMQP_URL})
        assert result.returncode != 0
        assert "--url: http://guest:***@h/: the scheme must be amqp or amqps" in result.stderr, result.stderr
        assert "secret" not in result.stderr + result.stdout
