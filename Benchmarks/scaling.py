"""How cost grows (Benchmarks/run --scaling): ours beside raw rabbitmq-c on the same broker, rounds interleaved.

  body      drain (prefetch 1) and round trip (send all, await all) with task bodies of 200 B, 10 KB and 1 MB
            (the argument is one string of that many bytes; the raw worker echoes the body, as demo.echo does)
  queues    one worker consuming 1, 10 and 100 queues (one prefetch-1 consumer each), the tasks spread evenly
  callers   1,000 concurrent `send` callers on one TaskClient (each send awaits its confirm; the client pipelines
            them) vs raw rabbitmq-c publishing the same number pipelined; messages/s
  backlog   a backlog of --backlog tasks (default 1,000,000) drained by one worker: the rate over the first and the
            last tenth, and the worker's RSS sampled every second during the drain

With --callgrind, instructions per task (Benchmarks/callgrind's method, fewer tasks) are added where they mean
something: the worker draining each body size. Not part of --smoke; the backlog takes long (make it smaller with
--backlog, and say which size was run).
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import bench

SIZES = [("200 B", 200), ("10 KB", 10_240), ("1 MB", 1_048_576)]
IMPLS = ["raw", "ours"]


def with_body(size, action):
    """Runs `action` with BENCH_BODY_BYTES set for every process it starts (fill, raw_bench, amqp-tasks-bench)."""
    os.environ["BENCH_BODY_BYTES"] = str(size)
    try:
        return action()
    finally:
        del os.environ["BENCH_BODY_BYTES"]


def body_counts(n):
    """Tasks per run for each body size: fewer as they grow, so a 1 MB run moves 200 MB, not 20 GB."""
    return {200: n, 10_240: max(n // 2, 100), 1_048_576: max(min(n // 100, 200), 20)}


def start_consumers(impl, queues, count):
    if impl == "raw":
        return subprocess.Popen([str(bench.RAW), "consume", bench.HOST, bench.PORT, ",".join(queues), str(count)],
                                stdout=subprocess.DEVNULL)
    command = [str(bench.RELEASE / "amqp-worker"), "--url", bench.URL, "--demo-tasks", "--concurrency", "1",
               "--log-level", "warning"]
    for queue in queues:
        command += ["--queue", queue]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def drain_queues(broker, impl, k, count):
    """One worker draining `count` tasks spread over `k` queues; tasks/s from the first task taken to the last."""
    queues = [f"bench.scale.{impl}.{k}.{i}" for i in range(k)]
    for queue in queues:
        broker.reset(queue)
    bench.fill(",".join(queues), count)
    worker = start_consumers(impl, queues, count)

    def depth():
        return sum(broker.depth(queue) for queue in queues)

    started, first = None, None
    while True:
        left = depth()
        if started is None and left < count:
            started, first = time.perf_counter(), left
        if started is not None and left == 0:
            elapsed = time.perf_counter() - started
            break
        time.sleep(0.005 if k == 1 else 0.02)
    time.sleep(0.05)
    cpu = bench.cpu_seconds([worker.pid])
    bench.stop([worker])
    for queue in queues:
        broker.channel.queue_delete(queue)
    return {"tasks_per_s": first / elapsed, "worker_cpu_s_per_10k": cpu / count * 10_000}


def concurrent_senders(broker, impl, count):
    queue = f"bench.scale.callers.{impl}"
    broker.reset(queue)
    if impl == "raw":
        return {"sends_per_s": bench.run_json(bench.client_command("raw", "publish", queue, count))["publish_pipelined"]}
    return bench.run_json([str(bench.RELEASE / "amqp-tasks-bench"), "concurrent", bench.URL, queue, str(count)])


def backlog(broker, impl, count):
    """Drains a backlog of `count` tasks; rates over the first and last tenth, RSS sampled every second."""
    queue = f"bench.scale.backlog.{impl}"
    broker.reset(queue)
    print(f"bench: backlog: filling {count} tasks for {impl}", file=sys.stderr, flush=True)
    bench.fill(queue, count)
    worker = start_consumers(impl, [queue], count)
    tenth = count // 10
    samples, marks = [], {}
    next_sample = time.monotonic()
    while True:
        left = broker.depth(queue)
        now = time.perf_counter()
        done = count - left
        for mark in (1, tenth, count - tenth, count):
            if mark not in marks and done >= mark:
                marks[mark] = now
        if done >= 1 and time.monotonic() >= next_sample:
            samples.append({"t": now, "done": done, "rss_mb": bench.rss_mb([worker.pid])})
            next_sample += 1.0
        if left == 0:
            break
        time.sleep(0.01)
    bench.stop([worker])
    broker.channel.queue_delete(queue)
    rss = [s["rss_mb"] for s in samples if s["rss_mb"]]
    return {
        "count": count,
        "rate_first_tenth": (tenth - 1) / (marks[tenth] - marks[1]),
        "rate_last_tenth": tenth / (marks[count] - marks[count - tenth]),
        "rate_overall": (count - 1) / (marks[count] - marks[1]),
        "rss_first_mb": rss[0] if rss else None, "rss_max_mb": max(rss) if rss else None,
        "rss_last_mb": rss[-1] if rss else None, "rss_samples": samples,
    }


def callgrind_drain(broker, size, count):
    """Instructions per task of each worker draining tasks of `size` bytes (callgrind, start-up subtracted)."""
    import callgrind
    callgrind.OUT.mkdir(parents=True, exist_ok=True)
    figures = {}
    for impl in ("ours", "raw"):
        figures[impl] = with_body(size, lambda: callgrind.measure(broker, "worker", impl, count)[0])
    return figures


def run(args):
    broker = bench.Broker()
    n = args.scaling_count
    rounds = args.rounds
    only = set(args.only.split(",")) if args.only else {"body", "queues", "callers", "backlog"}
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": rounds}
    runs = {}

    def interleaved(name, scenario):
        runs[name] = {impl: [] for impl in IMPLS}
        for round_number in range(rounds):
            for impl in IMPLS:
                print(f"bench: {name} round {round_number + 1}/{rounds}: {impl}", file=sys.stderr, flush=True)
                runs[name][impl].append(scenario(impl))

    counts = body_counts(n)
    if "body" in only:
        for label, size in SIZES:
            count = counts[size]
            interleaved(f"drain {label}", lambda impl: with_body(size, lambda: bench.drain(broker, impl, 1, count)))
            interleaved(f"roundtrip {label}",
                        lambda impl: with_body(size, lambda: bench.with_worker(broker, impl, "roundtrip", count)))
    if "queues" in only:
        for k in (1, 10, 100):
            interleaved(f"queues {k}", lambda impl: drain_queues(broker, impl, k, n))
    if "callers" in only:
        interleaved("callers 1000", lambda impl: concurrent_senders(broker, impl, n))
    medians = {name: {impl: {key: statistics.median(r[key] for r in rs) for key in rs[0] if key != "callers"}
                      for impl, rs in by_impl.items()} for name, by_impl in runs.items()}
    results.update({"counts": {"tasks": n, **{label: counts[size] for label, size in SIZES}}, "medians": medians,
                    "runs": runs})
    if args.callgrind and "body" in only:
        results["callgrind"] = {label: callgrind_drain(broker, size, max(counts[size] // 5, 20))
                                for label, size in SIZES}
    if "backlog" in only:
        results["backlog"] = {impl: backlog(broker, impl, args.backlog) for impl in IMPLS}
    output = pathlib.Path(args.output).with_name("scaling-results.json")
    output.write_text(json.dumps(results, indent=2))
    print_tables(results)
    print(f"\nJSON: {output}")


def print_tables(results):
    medians, rounds = results["medians"], results["rounds"]
    rows = []
    for name, by_impl in medians.items():
        key = next(k for k in ("tasks_per_s", "roundtrip_per_s", "sends_per_s") if k in by_impl["ours"])
        raw, ours = by_impl["raw"][key], by_impl["ours"][key]
        label = {"tasks_per_s": "tasks/s", "roundtrip_per_s": "tasks/s", "sends_per_s": "msg/s"}.get(key, key)
        count = results["counts"].get(name.split(" ", 1)[-1], results["counts"]["tasks"])
        extra = ""
        cg = results.get("callgrind", {}).get(name.split(" ", 1)[-1]) if name.startswith("drain") else None
        if cg:
            extra = f" | {cg['raw']:,.0f} | {cg['ours']:,.0f} | {cg['ours'] / cg['raw']:.2f}"
        elif results.get("callgrind"):
            extra = " | – | – | –"
        rows.append(f"| {name} ({count:,} tasks, {label}) | {raw:,.0f} | {ours:,.0f} | {ours / raw:.2f}{extra} |")
    cg_head = " raw instr/task | ours instr/task | ours/raw |" if results.get("callgrind") else ""
    if rows:
        print(f"\nmedians of {rounds} interleaved rounds\n")
        print(f"| scenario | raw C | ours | ours/raw |{cg_head}")
        print("|---|---:|---:|---:|" + ("---:|---:|---:|" if cg_head else ""))
        print("\n".join(rows))
    for impl, b in results.get("backlog", {}).items():
        print(f"\nbacklog of {b['count']:,} tasks, {impl}: {b['rate_first_tenth']:,.0f} tasks/s over the first tenth, "
              f"{b['rate_last_tenth']:,.0f} over the last, {b['rate_overall']:,.0f} overall; worker RSS "
              f"{b['rss_first_mb']:.1f} MB at the start, {b['rss_max_mb']:.1f} MB at most, {b['rss_last_mb']:.1f} "
              f"MB at the end")
