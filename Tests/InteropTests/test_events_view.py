"""amqp-task events shows whatever arrives on celeryev: an event with an impossible timestamp must not stop it."""
import json
import queue
import subprocess
import threading
import time

from kombu import Exchange, Producer

from celeryapp import app
from conftest import binary

ODD_TIMESTAMPS = [1e300, -1e300, 1.7976931348623157e308, 1e20, -62135596801, 253402300800, "soon", None]


def test_events_with_impossible_timestamps_are_shown_not_fatal():
    hostname = f"odd-clock-{time.time_ns()}@interop"
    viewer = subprocess.Popen([binary("amqp-task"), "events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(viewer.stdout.readline, "")],
                     daemon=True).start()
    seen = []

    def wait_for(text, publish_again=None):
        deadline = time.time() + 30
        while not any(text in line for line in seen):
            assert time.time() < deadline, f"amqp-task events never showed {text!r}; status {viewer.poll()}; {seen}"
            if publish_again:
                publish_again()
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                pass

    try:
        with app.connection() as connection:
            producer = Producer(connection.default_channel, exchange=Exchange("celeryev", type="topic"))

            def publish(event_type, timestamp):
                event = {"hostname": hostname, "type": event_type, "clock": 2**63 - 1, "active": 2**63 - 1,
                         "processed": 10**30, "timestamp": timestamp}
                producer.publish(json.dumps(event), routing_key=event_type.replace("-", "."),
                                 content_type="application/json", content_encoding="utf-8")

            # The viewer's queue exists once it shows an event: publish until it does.
            wait_for(f"{hostname} worker-online", lambda: publish("worker-online", time.time()))
            for timestamp in ODD_TIMESTAMPS:
                publish("worker-heartbeat", timestamp)
            publish("worker-offline", time.time())
            wait_for(f"{hostname} worker-offline")
        assert viewer.poll() is None, f"amqp-task events stopped: {viewer.stderr.read()}"
    finally:
        viewer.kill()
        viewer.wait()
    heartbeats = [line for line in seen if f"{hostname} worker-heartbeat" in line]
    assert len(heartbeats) == len(ODD_TIMESTAMPS), seen
    assert heartbeats[0].startswith("timestamp=1e+300?") or heartbeats[0].startswith("timestamp=1e300?"), heartbeats
