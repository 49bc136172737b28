"""Trace context across Python and Swift: a Celery client instrumented with opentelemetry-instrumentation-celery sends a
task that a Swift amqp-worker runs, whose link an instrumented Celery worker runs; one trace throughout.

The Python spans (client and Celery worker, which runs in this process) go to the OpenTelemetry SDK's in-memory
exporter; the Swift worker writes its spans with `--trace-log` (one JSON object per line)."""
import json
import time

import pytest
from celery.contrib.testing.worker import start_worker
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from celeryapp import app


@pytest.fixture
def swift_add():
    """demo.add, which the Swift worker runs, declared in Python for this test only, so the instrumentation knows the
    task it publishes (for a name it does not know, as with send_task, it injects the context but never ends its
    publish span)."""

    @app.task(name="demo.add", shared=False)
    def stub(x, y):
        raise NotImplementedError("demo.add runs in the Swift worker")

    yield app.tasks["demo.add"]
    app.tasks.unregister("demo.add")


@pytest.fixture
def otel():
    """Celery's signals instrumented for this test, its spans in memory; undone afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider, exporter
    instrumentor.uninstrument()


def wait_for(what, found, seconds=60):
    """Polls `found()` until it returns something truthy: a safety-net deadline, not a timing assertion."""
    deadline = time.time() + seconds
    while True:
        value = found()
        if value:
            return value
        if time.time() > deadline:
            pytest.fail(f"{what} never happened")
        time.sleep(0.05)


def python_spans(exporter):
    return {span.name: span for span in exporter.get_finished_spans()}


def swift_spans(path):
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return {span["name"]: span for span in map(json.loads, lines)}


def hex_id(number, digits):
    return format(number, f"0{digits}x")


def test_a_celery_clients_trace_runs_through_a_swift_worker_into_a_celery_worker(otel, swift_add, swift_worker, queue,
                                                                                  tmp_path):
    provider, exporter = otel
    trace_log = tmp_path / "swift-spans.jsonl"
    swift_worker("--trace-log", str(trace_log))
    py_queue = f"{queue}.py"
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[py_queue], loglevel="WARNING",
                      shutdown_timeout=30):
        with provider.get_tracer("interop").start_as_current_span("checkout"):
            result = swift_add.apply_async((2, 3), queue=queue, link=app.signature("py.add", args=(10,), queue=py_queue))
        assert result.get(timeout=30) == 5
        py = wait_for("the Celery worker's run/py.add span", lambda: (s := python_spans(exporter)) and "run/py.add" in s and s)
    swift = wait_for("the Swift worker's spans",
                     lambda: (s := swift_spans(trace_log)) and {"run/demo.add", "apply_async/py.add"} <= s.keys() and s)

    root, client_send, celery_run = py["checkout"], py["apply_async/demo.add"], py["run/py.add"]
    swift_run, swift_send = swift["run/demo.add"], swift["apply_async/py.add"]
    trace_id = hex_id(root.context.trace_id, 32)

    # One trace id throughout, on both sides.
    assert {hex_id(span.context.trace_id, 32) for span in py.values()} == {trace_id}
    assert swift_run["trace_id"] == swift_send["trace_id"] == trace_id

    # Parent/child, in order: checkout → apply_async/demo.add (Python) → run/demo.add (Swift) → apply_async/py.add
    # (Swift) → run/py.add (Celery worker).
    assert client_send.parent.span_id == root.context.span_id
    assert client_send.kind == trace.SpanKind.PRODUCER
    assert swift_run["parent_span_id"] == hex_id(client_send.context.span_id, 16)
    assert swift_run["kind"] == "consumer"
    assert swift_run["attributes"]["celery.task_name"] == "demo.add"
    assert swift_run["attributes"]["messaging.message.id"] == result.id
    assert swift_run["attributes"]["celery.state"] == "SUCCESS"
    assert swift_send["parent_span_id"] == swift_run["span_id"]
    assert swift_send["kind"] == "producer"
    assert swift_send["attributes"]["messaging.destination"] == py_queue
    assert hex_id(celery_run.parent.span_id, 16) == swift_send["span_id"]
    assert celery_run.parent.is_remote
    assert celery_run.kind == trace.SpanKind.CONSUMER
    assert celery_run.attributes["celery.task_name"] == "py.add"
    chain = [root.start_time, client_send.start_time, swift_run["start_unix_nano"], swift_send["start_unix_nano"],
             celery_run.start_time]
    assert chain == sorted(chain), "each span starts after its parent"

    print("\n" + "\n".join([
        f"trace {trace_id}",
        f"  {root.name} (python) span {hex_id(root.context.span_id, 16)}",
        f"    {client_send.name} (python client) span {hex_id(client_send.context.span_id, 16)}",
        f"      {swift_run['name']} (swift worker) span {swift_run['span_id']}",
        f"        {swift_send['name']} (swift worker) span {swift_send['span_id']}",
        f"          {celery_run.name} (celery worker) span {hex_id(celery_run.context.span_id, 16)}",
    ]))
    print(json.dumps(swift_run))


def test_a_malformed_traceparent_from_python_starts_a_new_trace_in_the_swift_worker(swift_worker, queue, tmp_path):
    trace_log = tmp_path / "swift-spans.jsonl"
    swift_worker("--trace-log", str(trace_log))
    result = app.send_task("demo.add", args=[2, 3], queue=queue, headers={"traceparent": "00-not-a-trace-01",
                                                                              "tracestate": "x=y"})
    assert result.get(timeout=30) == 5
    run = wait_for("the Swift worker's run/demo.add span", lambda: swift_spans(trace_log).get("run/demo.add"))
    assert run["parent_span_id"] is None
    assert len(run["trace_id"]) == 32 and run["trace_id"] != "0" * 32
