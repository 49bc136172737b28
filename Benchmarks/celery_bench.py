"""Celery client scenarios for Benchmarks/run; prints one JSON line like raw_bench and amqp-tasks-bench.

    python celery_bench.py publish|roundtrip|latency QUEUE COUNT
"""
import json
import sys
import time

from benchapp import app

mode, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "publish":
    # Celery publishes one message at a time; with confirm_publish each waits for its confirm.
    with app.producer_or_acquire() as producer:
        start = time.perf_counter()
        for i in range(count):
            app.send_task("demo.echo", args=[i], queue=queue, ignore_result=True, producer=producer)
        each = count / (time.perf_counter() - start)
    with app.connection_or_acquire() as connection:
        connection.default_channel.queue_purge(queue)
    print(json.dumps({"publish_confirm_each": each}))
elif mode == "roundtrip":
    start = time.perf_counter()
    results = [app.send_task("demo.echo", args=[i], queue=queue) for i in range(count)]
    for result in results:
        result.get(timeout=300)
    print(json.dumps({"roundtrip_per_s": count / (time.perf_counter() - start), "received": count}))
elif mode == "latency":
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        app.send_task("demo.echo", args=[i], queue=queue).get(timeout=60)
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    print(json.dumps({"p50_ms": latencies[count // 2], "p90_ms": latencies[count * 9 // 10],
                      "p99_ms": latencies[count * 99 // 100]}))
else:
    sys.exit(f"celery_bench: unknown mode {mode}")
