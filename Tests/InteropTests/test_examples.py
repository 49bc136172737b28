"""The README's Swift worker example (Sources/amqp-tasks-example-worker): a worker run as a swift-service-lifecycle
service with one middleware. It runs tasks, its middleware rejects what it should (to <queue>.dead with its reason)
and sees every outcome, and SIGTERM stops it gracefully."""
import json
import signal

from conftest import amqp_task, binary


def test_the_readme_worker_runs_as_a_service_with_its_middleware(processes, queue):
    worker, log = processes.start("example-worker", [binary("amqp-tasks-example-worker"), queue], f"consuming {queue}")
    status, out, err = amqp_task("send", "demo.add", "--args", "[2, 3]", "--queue", queue, "--wait")
    assert status == 0, err
    assert json.loads(out)["result"] == 5
    status, out, err = amqp_task("send", "admin.wipe", "--kwargs", '{"token": "t"}', "--queue", queue, "--wait")
    assert status == 0, err
    assert json.loads(out)["result"].startswith("wiped by ")
    status, out, err = amqp_task("send", "admin.wipe", "--queue", queue, "--wait")
    assert status == 1, (out, err)
    answer = json.loads(out)
    assert answer["status"] == "FAILURE"
    assert "admin tasks need a token" in json.dumps(answer)
    status, out, err = amqp_task("dead", "list", queue)
    assert status == 0, err
    assert "unauthorised" in out, out
    text = log.read_text()
    assert text.count("guard saw the outcome") == 3, text
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, log.read_text()
