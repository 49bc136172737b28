"""Passwords and keys: never printed, never sent in clear to another host, never readable by other users."""
import http.server
import os
import pathlib
import socket
import stat
import subprocess
import threading
import uuid

import pytest

from celeryapp import app
from conftest import REPO, amqp_task

SECRET = "S3cr3t"
# URLs Foundation's parser refuses or misreads, alone and comma-separated.
ODD_URLS = [
    f"amqp://guest:{SECRET}/x@127.0.0.1:1/",
    f"amqp://guest:{SECRET}%zz@127.0.0.1:1/",
    f"amqp://guest:{SECRET}#x@127.0.0.1:1/",
    f"amqp://guest:{SECRET}@127.0.0.1:notaport/",
    f"amqp://guest:{SECRET},x@127.0.0.1:1/",
    f"amqp://guest:{SECRET}@h1:1/, amqp://guest:{SECRET}?x@h2:1/,amqp://guest:{SECRET}@[::1:1/",
]


@pytest.mark.parametrize("url", ODD_URLS)
def test_config_check_never_prints_a_password(url):
    status, out, err = amqp_task("config", "check", "--url", url)
    assert SECRET not in out + err, out + err
    assert "***" in out + err


def test_a_retrying_worker_never_logs_the_password(processes, queue):
    # Unreachable: the worker retries and logs why, with the password masked.
    url = f"amqp://guest:{SECRET}@127.0.0.1:1/,amqp://guest:{SECRET}@127.0.0.1:2/"
    process, log = processes.start(
        "amqp-worker", [str(REPO / ".build/debug/amqp-worker"), "--demo-tasks", "--queue", queue, "--url", url],
        "reconnecting in")
    assert SECRET not in log.read_text(), log.read_text()


def test_a_worker_refuses_an_unparseable_url_without_printing_the_password(queue):
    # Unparseable (a bad port; a password Foundation misreads): refused at start, naming the URL with the password
    # masked, instead of retrying a URL that can never work.
    for url in (f"amqp://guest:{SECRET}%zz@127.0.0.1:notaport/,amqp://guest:{SECRET}/x@127.0.0.1:1/",
                f"amqp://guest:{SECRET}@127.0.0.1:1/,amqp://guest:{SECRET}@127.0.0.1:notaport/"):
        result = subprocess.run(
            [str(REPO / ".build/debug/amqp-worker"), "--demo-tasks", "--queue", queue, "--url", url],
            capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "--url: amqp://guest:***@" in result.stderr, result.stderr
        assert SECRET not in result.stdout + result.stderr, result.stdout + result.stderr


class HeaderRecorder(http.server.BaseHTTPRequestHandler):
    """Records the Authorization header of every request; answers like the management API for one queue."""
    seen = []

    def do_GET(self):
        HeaderRecorder.seen.append(self.headers.get("Authorization"))
        body = b'{"messages_unacknowledged": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    HeaderRecorder.seen = []
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), HeaderRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def non_loopback_address():
    """This machine's address on its network (not 127.0.0.0/8): what another host's management API looks like."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
        address = s.getsockname()[0]
    if address.startswith("127."):
        pytest.fail("this machine has no non-loopback IPv4 address to stand for another host")
    return address


def test_management_credentials_go_over_plain_http_only_to_loopback_or_when_allowed(recorder):
    queue = f"secrets.{uuid.uuid4().hex[:8]}"
    with app.connection() as connection:
        connection.default_channel.queue_declare(queue=queue, auto_delete=False)
        try:
            remote = f"http://{non_loopback_address()}:{recorder}"
            status, out, err = amqp_task("queues", "--management-url", remote, queue)
            assert status == 0, err
            assert HeaderRecorder.seen == [], "no request, so no password, over plain http to another host"
            assert "over plain http://" in err and "--management-allow-http" in err, err
            assert "?" in out.splitlines()[1], out

            status, out, err = amqp_task("queues", "--management-url", remote, "--management-allow-http", queue)
            assert status == 0, err
            assert len(HeaderRecorder.seen) == 1 and HeaderRecorder.seen[0].startswith("Basic "), HeaderRecorder.seen

            status, out, err = amqp_task("queues", "--management-url", f"http://127.0.0.1:{recorder}", queue)
            assert status == 0, err
            assert len(HeaderRecorder.seen) == 2, "loopback http is this machine: the credentials may go"
        finally:
            connection.default_channel.queue_delete(queue=queue)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_broker_keys_and_cookie_are_readable_by_their_owner_only():
    # Idempotent: on a running node this only checks and mends the modes.
    subprocess.run([str(REPO / "Deploy/broker"), "start"], check=True, capture_output=True, timeout=300)
    directory = pathlib.Path(os.environ.get("AMQP_BROKER_DIR", REPO / ".broker"))
    keys = sorted((directory / "tls").glob("*.key"))
    assert {k.name for k in keys} >= {"ca.key", "server.key", "client.key"}, keys
    for key in keys:
        assert mode(key) & 0o077 == 0, f"{key} is {oct(mode(key))}"
    assert mode(directory / ".erlang.cookie") & 0o077 == 0
    assert mode(directory / "tls" / "ca.pem") & 0o444 == 0o444, "certificates stay readable"


def test_cluster_cookie_is_readable_by_its_owner_only(tmp_path):
    # Only the cookie step of Deploy/cluster: starting the cluster would take the shared cluster ports.
    script = (REPO / "Deploy/cluster").read_text()
    function = script[script.index("shared_cookie() {"):]
    function = function[:function.index("\n}\n") + 3]
    subprocess.run(["bash", "-c", f"set -euo pipefail; umask 022; root={tmp_path}; {function}\nshared_cookie"],
                   check=True, timeout=30)
    assert mode(tmp_path / "cookie") & 0o077 == 0, oct(mode(tmp_path / "cookie"))
    for n in (1, 2, 3):
        assert mode(tmp_path / f"n{n}" / ".erlang.cookie") & 0o077 == 0
