"""Records what a real Celery puts on the wire, as the JSON fixtures in this folder: run it through make-captures.

    CAPTURE_BROKER_URL=amqp://.../<vhost> python capture.py OUTDIR

The vhost must be empty (make-captures makes a fresh one). Three steps, each message read raw off a queue of ours
with py-amqp (the client library Celery itself uses), its header types read from the content-header bytes:
1. task messages: a Celery client sends the task messages the codec tests need to the `celery` queue while no worker
   runs; they are read off that queue (task_messages.json);
2. results and events: a real Celery worker (prefork, -E, track started, acks late) runs a task that succeeds, one
   that fails with ValueError("bad value"), one that retries once and one that reports PROGRESS twice with
   update_state; the rpc:// results are read off the queue
   those tasks name as reply_to (result_messages.json) and every event off a queue bound to `celeryev` with `#`
   (event_messages.json);
3. the worker is stopped with SIGTERM (a warm shutdown), which sends worker-offline (also in event_messages.json).
"""
import calendar
import datetime
import decimal
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import time

import amqp
import celery
import kombu
from celery import chain, group
from kombu.utils.url import parse_url

import amqpwire
from captureapp import add, app, fail, progress, retry_once

HERE = pathlib.Path(__file__).resolve().parent
WORKER_HOSTNAME = "cap@fixtures"
DEADLINE_SECONDS = 60
EVENTS_QUEUE = "capture.events"
# The worker's results go here (the tasks' reply_to), not to the client's own reply queue: the client consumes that
# one itself as soon as it holds a pending result, and would take messages from us.
RESULTS_QUEUE = "capture.results"


class CaptureError(Exception):
    """A capture step did not see what it waits for."""


def same_value(mine, theirs, kind) -> bool:
    """Our decoding of a header value against py-amqp's, which uses Python types for the same thing."""
    if isinstance(kind, dict):
        return isinstance(theirs, dict) and mine.keys() == theirs.keys() and all(
            same_value(mine[k], theirs[k], kind["table"][k]) for k in mine)
    if isinstance(kind, list):
        return isinstance(theirs, list) and len(mine) == len(theirs) and all(
            same_value(m, t, k) for m, t, k in zip(mine, theirs, kind[1:]))
    if kind == "timestamp":
        return mine == calendar.timegm(theirs.utctimetuple())
    if kind == "decimal":
        return decimal.Decimal(mine) == theirs
    if kind == "bytes":
        return mine.encode("latin-1") == theirs
    return mine == theirs


def record(message) -> dict:
    """One delivered message as a fixture: where it was published, its properties as on the wire with the AMQP type
    of every header, and its body both as sent and parsed."""
    properties, header_types = amqpwire.read_properties(message.raw_properties)
    theirs = dict(message.properties)
    theirs["headers"] = theirs.pop("application_headers", None)
    for name, value in properties.items():
        matches = same_value(value, theirs.get(name), {"table": header_types}) if name == "headers" else value == theirs.get(name)
        if not matches:
            raise CaptureError(f"property {name}: read {value!r} from the raw header, py-amqp read {theirs.get(name)!r}")
    body_raw = bytes(message.body).decode("utf-8")
    return {
        "exchange": message.delivery_info["exchange"],
        "routing_key": message.delivery_info["routing_key"],
        "properties": properties,
        "header_amqp_types": header_types,
        "body_raw": body_raw,
        "body": json.loads(body_raw),
    }


class Tap:
    """A py-amqp connection of our own that reads messages off queues raw and acks them."""

    def __init__(self, url: str):
        amqpwire.record_raw_properties()
        parts = parse_url(url)
        self.connection = amqp.Connection(
            host=f"{parts['hostname']}:{parts['port']}", userid=parts["userid"], password=parts["password"],
            virtual_host=parts["virtual_host"])
        self.connection.connect()
        # auto_decode=False: the body as the bytes on the wire, not decoded by py-amqp.
        self.channel = amqp.Channel(self.connection, auto_decode=False)
        self.channel.open()
        self.received = {}
        self.consumer_tags = {}

    @property
    def server_version(self) -> str:
        version = self.connection.server_properties.get("version", "unknown")
        return version.decode() if isinstance(version, bytes) else version

    def consume(self, queue: str):
        """Collects every message of `queue` into `received[queue]` from now on."""
        messages = self.received.setdefault(queue, [])

        def on_message(message):
            messages.append(record(message))
            self.channel.basic_ack(message.delivery_info["delivery_tag"])

        self.consumer_tags[queue] = self.channel.basic_consume(queue, callback=on_message)
        return messages

    def stop(self, queue: str):
        """Stops reading `queue` (what was already delivered is acked and kept)."""
        self.channel.basic_cancel(self.consumer_tags.pop(queue))

    def wait_for(self, what: str, done, worker_log=None):
        """Reads deliveries until `done()` holds; fails after DEADLINE_SECONDS (a safety net, not a timing)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not done():
            if time.monotonic() > deadline:
                log = worker_log.read_text()[-4000:] if worker_log else ""
                raise CaptureError(f"no {what} within {DEADLINE_SECONDS} s; received so far: "
                                   f"{ {q: len(m) for q, m in self.received.items()} }\n{log}")
            try:
                self.connection.drain_events(timeout=1)
            except TimeoutError:
                pass  # nothing this second: check again

    def close(self):
        self.connection.close()


def declare_topology(tap: Tap):
    """Celery's default task queue, exchange and binding with exactly Celery's parameters, and a queue of ours on the
    event exchange, so no message is lost before the Celery client or worker declares them."""
    channel = tap.channel
    channel.exchange_declare("celery", "direct", durable=True, auto_delete=False)
    channel.queue_declare("celery", durable=True, auto_delete=False)
    channel.queue_bind("celery", "celery", "celery")
    channel.exchange_declare("celeryev", "topic", durable=True, auto_delete=False)
    channel.queue_declare(EVENTS_QUEUE, durable=False, auto_delete=False)
    channel.queue_bind(EVENTS_QUEUE, "celeryev", "#")
    channel.queue_declare(RESULTS_QUEUE, durable=False, auto_delete=False)


def send_task_messages() -> dict:
    """The task messages the codec tests read, each kind once; their ids by kind."""
    sent = {
        "send_task_plain": app.send_task("tasks.add", args=(2, 3), kwargs={"z": 1}),
        "apply_async_countdown_expires_priority": add.apply_async((2, 3), {"z": 1}, countdown=10, expires=60,
                                                                  priority=5),
        "send_task_retries_timelimit_ignore_result_custom_header": app.send_task(
            "tasks.add", args=(4, 5), retries=2, time_limit=30, soft_time_limit=20, ignore_result=True,
            headers={"x-custom": "hello"}),
        "apply_async_link_link_error": add.apply_async((1, 2), link=add.s(10), link_error=fail.si("cb")),
        "chain_of_three_first_message": chain(add.s(1, 2), add.s(3), add.s(4)).apply_async(),
        "group_of_two": group(add.s(1, 1), add.s(2, 2)).apply_async(),
    }
    return {kind: result.id for kind, result in sent.items()}


def start_worker(url: str, log: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "captureapp", "worker", "--pool", "prefork", "--concurrency", "1",
         "--events", "--hostname", WORKER_HOSTNAME, "--loglevel", "INFO"],
        cwd=HERE, env={**os.environ, "CAPTURE_BROKER_URL": url}, stdout=log.open("w"), stderr=subprocess.STDOUT)


def events_of(messages, event_type=None):
    """Every event in the captured event messages (a task.multi message carries a list of them)."""
    found = []
    for message in messages:
        body = message["body"]
        found += [e for e in (body if isinstance(body, list) else [body]) if event_type in (None, e["type"])]
    return found


def statuses(messages, task_id):
    return [m["body"]["status"] for m in messages if m["body"].get("task_id") == task_id]


def write(out: pathlib.Path, name: str, content: dict):
    """Writes a capture, with this machine's folders (in tracebacks) replaced by `<repo>` and `<python>`, so the
    files name no path of the machine that made them and regenerate the same anywhere."""
    text = json.dumps(content, indent=2, ensure_ascii=False)
    repo = str(pathlib.Path(__file__).resolve().parents[3])
    for folder, placeholder in ((repo, "<repo>"), (sys.base_prefix, "<python>"), (sys.prefix, "<python>")):
        text = text.replace(folder + "/", placeholder + "/")
    (out / name).write_text(text + "\n")
    print(f"capture: wrote {out / name} ({len(content['messages'])} messages)", file=sys.stderr)


def main():
    url = os.environ["CAPTURE_BROKER_URL"]
    out = pathlib.Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tap = Tap(url)
    made_by = {
        "script": "Tests/Fixtures/celery/make-captures",
        "celery": celery.__version__, "kombu": kombu.__version__, "py-amqp": amqp.__version__,
        "python": platform.python_version(), "rabbitmq": tap.server_version,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }
    declare_topology(tap)

    # 1. Task messages, while no worker consumes the queue.
    sent_ids = send_task_messages()
    expected_tasks = len(sent_ids) + 1  # the group sends two messages
    tasks = tap.consume("celery")
    tap.wait_for(f"{expected_tasks} task messages on the celery queue", lambda: len(tasks) >= expected_tasks)
    tap.stop("celery")
    write(out, "task_messages.json",
          {"made_by": made_by, "sent_ids": sent_ids, "reply_to_oid": app.thread_oid, "messages": tasks})

    # 2. Results and events from a real worker.
    events = tap.consume(EVENTS_QUEUE)
    results = tap.consume(RESULTS_QUEUE)
    with tempfile.TemporaryDirectory() as scratch:
        worker_log = pathlib.Path(scratch) / "worker.log"
        worker = start_worker(url, worker_log)
        try:
            tap.wait_for("worker-online event", lambda: events_of(events, "worker-online"), worker_log)
            ids = {
                "success": add.apply_async((2, 3), {"z": 1}, reply_to=RESULTS_QUEUE).id,
                "failure": fail.apply_async(("bad value",), reply_to=RESULTS_QUEUE).id,
                "retry": retry_once.apply_async(reply_to=RESULTS_QUEUE).id,
                "progress": progress.apply_async((2,), reply_to=RESULTS_QUEUE).id,
            }
            tap.wait_for("results: SUCCESS, FAILURE, and RETRY then SUCCESS", lambda: (
                statuses(results, ids["success"])[-1:] == ["SUCCESS"]
                and statuses(results, ids["failure"])[-1:] == ["FAILURE"]
                and statuses(results, ids["retry"])[-1:] == ["SUCCESS"]
                and statuses(results, ids["progress"])[-1:] == ["SUCCESS"]), worker_log)
            task_events = {"task-received", "task-started", "task-succeeded", "task-failed", "task-retried"}
            tap.wait_for(f"events {sorted(task_events)} and a worker-heartbeat after them", lambda: (
                task_events <= {e["type"] for e in events_of(events)}
                and events_of(events)[-1]["type"] == "worker-heartbeat"), worker_log)
            worker.send_signal(signal.SIGTERM)
            tap.wait_for("worker-offline event after SIGTERM", lambda: events_of(events, "worker-offline"), worker_log)
            worker.wait(timeout=DEADLINE_SECONDS)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for task_id in ids.values():
        if "STARTED" not in statuses(results, task_id):
            raise CaptureError(f"no STARTED result for {task_id}: is task_track_started on?")
    write(out, "result_messages.json", {"made_by": made_by, "ids": ids, "messages": results})
    write(out, "event_messages.json", {"made_by": made_by, "worker_hostname": WORKER_HOSTNAME, "messages": events})
    tap.close()


if __name__ == "__main__":
    try:
        main()
    except CaptureError as error:
        sys.exit(f"capture: {error}")
