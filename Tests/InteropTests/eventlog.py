"""Celery events as the tests see them: a queue of their own bound to `celeryev`, read by polling (no threads)."""
import time
import uuid

import kombu
import pytest

from celeryapp import app


class EventLog:
    """Every event published to `celeryev` from its creation on, in the order the broker delivered them."""

    def __init__(self):
        self.connection = app.connection_for_read()
        self.channel = self.connection.channel()
        exchange = kombu.Exchange("celeryev", type="topic", durable=True)
        self.queue = kombu.Queue(f"test.events.{uuid.uuid4().hex[:8]}", exchange=exchange, routing_key="#",
                                 durable=False, auto_delete=True)(self.channel)
        self.queue.declare()
        self.seen = []

    def drain(self):
        while (message := self.queue.get(no_ack=True)) is not None:
            self.seen.append(message.decode())

    def wait_for(self, what, predicate, seconds=60):
        """The first event `predicate` accepts; fails naming `what` after `seconds` (a safety net, not a measure)."""
        deadline = time.monotonic() + seconds
        while True:
            self.drain()
            for event in self.seen:
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; events seen: {[e.get('type') for e in self.seen]}")
            time.sleep(0.1)

    def of_task(self, task_id):
        """The types of the events about `task_id` seen so far."""
        return [event["type"] for event in self.seen if event.get("uuid") == task_id]

    def close(self):
        self.queue.delete()
        self.connection.release()
