#!/usr/bin/env python3
"""The engine of Benchmarks/run: every scenario for raw rabbitmq-c, amqp-tasks and Celery 5.7 on one broker,
rounds interleaved, medians and ratios printed as a table and written as JSON.

Scenarios (counts shrink with --smoke):
  publish     20,000 persistent messages, each confirm awaited, then pipelined      (messages/s)
  drain-c1/c2 20,000 queued no-op tasks, prefetch 1, 1 or 2 consumers               (tasks/s, worker CPU s/10k)
  roundtrip   20,000 tasks sent at once, every result awaited on the reply queue    (tasks/s, client CPU s/10k)
  latency     2,000 tasks one at a time                                             (p50/p90/p99 ms)
  memory      worker RSS idle, while and after running 200,000 tasks                (MB; one round)

With --scaling, how cost grows instead (Benchmarks/scaling.py): body sizes, 1/10/100 queues, 1,000 concurrent
senders, a backlog of a million tasks; Benchmarks/callgrind counts instructions per task.

With --baseline DIR (the release folder Benchmarks/build-baseline REV prints), an earlier build of ours runs as a
fourth implementation, "base", interleaved with the others, and the table adds ours/base: a change measured against
the commit before it on the same machine, in the same run.
"""
import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
from urllib.parse import urlparse

from kombu import Connection

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / ".build" / "release"
RAW = ROOT / ".build" / "raw_bench"
HERE = pathlib.Path(__file__).resolve().parent
URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
HOST, PORT = urlparse(URL).hostname, str(urlparse(URL).port or 5672)
IMPLS = ["raw", "ours", "celery"]
# Where each of our builds lives: this tree's release build, and with --baseline an earlier commit's.
BUILDS = {"ours": RELEASE}


def run_json(command, **kwargs):
    """Runs a benchmark client to the end; returns the JSON line it printed last."""
    process = subprocess.run(command, capture_output=True, text=True, timeout=1800, **kwargs)
    if process.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, command))} failed ({process.returncode}):\n{process.stderr}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def cpu_seconds(pids):
    """User + system CPU seconds of processes and their children (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in all_pids(pids):
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def rss_mb(pids):
    total = 0
    for pid in all_pids(pids):
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def all_pids(pids):
    """The processes and their descendants (Celery's prefork children)."""
    found = list(pids)
    for pid in pids:
        try:
            children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            found += all_pids([int(c) for c in children])
        except FileNotFoundError:
            pass
    return found


class Broker:
    def __init__(self):
        self.connection = Connection(URL)
        self.channel = self.connection.channel()

    def depth(self, queue):
        return self.channel.queue_declare(queue, passive=True).message_count

    def reset(self, queue):
        self.channel.queue_declare(queue, durable=True, auto_delete=False)
        self.channel.queue_purge(queue)


def start_worker(impl, queue, concurrency, count):
    """Starts the consumer(s) of one implementation; returns the processes."""
    if impl == "raw":
        each = count // concurrency
        return [subprocess.Popen([str(RAW), "consume", HOST, PORT, queue, str(each)], stdout=subprocess.DEVNULL)
                for _ in range(concurrency)]
    if impl in BUILDS:
        transient = ["--transient-results"] if os.environ.get("BENCH_TRANSIENT_RESULTS") else []
        return [subprocess.Popen([str(BUILDS[impl] / "amqp-worker"), "--url", URL, "--demo-tasks", "--queue", queue,
                                  "--concurrency", str(concurrency), "--log-level", "warning", *transient],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    return [subprocess.Popen([sys.executable, "-m", "celery", "-A", "benchapp", "worker", "-Q", queue, "-P", "prefork",
                              "-c", str(concurrency), "--loglevel=warning", "--without-gossip", "--without-mingle",
                              "--without-heartbeat"], cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def start_replying_worker(impl, queue):
    """A worker that answers each task on its reply queue (concurrency 1)."""
    if impl == "raw":
        return [subprocess.Popen([str(RAW), "worker", HOST, PORT, queue], stdout=subprocess.DEVNULL)]
    return start_worker(impl, queue, 1, 0)


def stop(processes):
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def fill(queue, count):
    run_json([str(RELEASE / "amqp-tasks-bench"), "fill", URL, queue, str(count)])


def drain(broker, impl, concurrency, count, sample_memory=False):
    """Drains `count` queued tasks. With `sample_memory`, the worker starts on an empty queue so its idle RSS can
    be read, and the tasks are sent while it runs; otherwise the queue is full before the worker starts."""
    queue = f"bench.drain.{impl}.{concurrency}"
    broker.reset(queue)
    if not sample_memory:
        fill(queue, count)
    workers = start_worker(impl, queue, concurrency, count)
    pids = [p.pid for p in workers]
    idle_rss = None
    if sample_memory:
        while broker.channel.queue_declare(queue, passive=True).consumer_count < concurrency:
            time.sleep(0.05)
        time.sleep(1)
        idle_rss = rss_mb(pids)
        filler = subprocess.Popen([str(RELEASE / "amqp-tasks-bench"), "fill", URL, queue, str(count)],
                                  stdout=subprocess.DEVNULL)
    started, first_depth, tenth_rss, done = None, None, None, 0
    while True:
        depth = broker.depth(queue)
        if sample_memory:
            if filler.poll() is None:
                time.sleep(0.05)
                continue
            if tenth_rss is None:
                tenth_rss = rss_mb(pids)
        if started is None and (depth < count or sample_memory):
            started, first_depth = time.perf_counter(), depth
        if started is not None and depth == 0:
            elapsed = time.perf_counter() - started
            break
        time.sleep(0.005)
    time.sleep(0.05)
    cpu = cpu_seconds(pids)
    end_rss = rss_mb(pids) if sample_memory else None
    stop(workers)
    result = {"tasks_per_s": first_depth / elapsed, "worker_cpu_s_per_10k": cpu / count * 10_000}
    if sample_memory:
        result.update({"rss_idle_mb": idle_rss, "rss_tenth_mb": tenth_rss, "rss_end_mb": end_rss})
    return result


def client_command(impl, mode, queue, count):
    if impl == "raw":
        return [str(RAW), mode, HOST, PORT, queue, str(count)]
    if impl in BUILDS:
        return [str(BUILDS[impl] / "amqp-tasks-bench"), mode, URL, queue, str(count)]
    return [sys.executable, str(HERE / "celery_bench.py"), mode, queue, str(count)]


def publish(broker, impl, count):
    queue = f"bench.publish.{impl}"
    broker.reset(queue)
    return run_json(client_command(impl, "publish", queue, count), cwd=HERE)


def with_worker(broker, impl, mode, count):
    queue = f"bench.{mode}.{impl}"
    broker.reset(queue)
    workers = start_replying_worker(impl, queue)
    time.sleep(0.3 if impl != "celery" else 3)
    start_usage = os.times()
    result = run_json(client_command(impl, mode, queue, count), cwd=HERE)
    usage = os.times()
    client_cpu = (usage.children_user - start_usage.children_user) + (usage.children_system - start_usage.children_system)
    stop(workers)
    if mode == "roundtrip":
        result["client_cpu_s_per_10k"] = client_cpu / count * 10_000
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few hundred tasks per scenario, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / ".build" / "benchmark-results.json"))
    parser.add_argument("--transient-results", action="store_true",
                        help="results and replies transient in all three (Celery's default), not persistent (ours)")
    parser.add_argument("--only", help="comma-separated scenarios to run (publish, drain-c1, drain-c2, roundtrip, "
                                       "latency, memory); default all")
    parser.add_argument("--baseline", help="release folder of an earlier build of ours (Benchmarks/build-baseline "
                                           "REV prints it), run as a fourth implementation, 'base'")
    parser.add_argument("--scaling", action="store_true",
                        help="how cost grows instead (Benchmarks/scaling.py): body sizes, queues, 1,000 concurrent "
                             "senders, a large backlog; --only body,queues,callers,backlog picks among them")
    parser.add_argument("--scaling-count", type=int, default=20_000, help="tasks per --scaling run (default 20,000)")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="tasks in the --scaling backlog")
    parser.add_argument("--callgrind", action="store_true", help="--scaling: add callgrind instructions per task")
    args = parser.parse_args()
    if args.scaling:
        import scaling
        scaling.run(args)
        return
    if args.baseline:
        BUILDS["base"] = pathlib.Path(args.baseline)
        IMPLS.append("base")
    if args.transient_results:
        os.environ["BENCH_TRANSIENT_RESULTS"] = os.environ["RAW_BENCH_TRANSIENT"] = "1"
    n = 300 if args.smoke else 20_000
    latency_n = 100 if args.smoke else 2_000
    memory_n = 2_000 if args.smoke else 200_000
    rounds = 1 if args.smoke else args.rounds
    broker = Broker()

    scenarios = {
        "publish": lambda impl: publish(broker, impl, n),
        "drain-c1": lambda impl: drain(broker, impl, 1, n),
        "drain-c2": lambda impl: drain(broker, impl, 2, n),
        "roundtrip": lambda impl: with_worker(broker, impl, "roundtrip", n),
        "latency": lambda impl: with_worker(broker, impl, "latency", latency_n),
    }
    only = set(args.only.split(",")) if args.only else None
    scenarios = {name: run for name, run in scenarios.items() if only is None or name in only}
    results = {name: {impl: [] for impl in IMPLS} for name in scenarios}
    for name, scenario in scenarios.items():
        for round_number in range(rounds):
            for impl in IMPLS:  # interleaved, so drift on the machine hits every implementation alike
                print(f"bench: {name} round {round_number + 1}/{rounds}: {impl}", file=sys.stderr, flush=True)
                results[name][impl].append(scenario(impl))
    memory = {impl: drain(broker, impl, 1, memory_n, sample_memory=True) for impl in ("ours", "celery")} \
        if only is None or "memory" in only else {}

    medians = {name: {impl: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                      for impl, runs in by_impl.items()} for name, by_impl in results.items()}
    report = {"date": time.strftime("%Y-%m-%d"), "counts": {"tasks": n, "latency": latency_n, "memory": memory_n},
              "rounds": rounds, "medians": medians, "memory": memory, "runs": results}
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(report, indent=2))
    print_table(medians, memory, n, latency_n, memory_n, rounds)
    print(f"\nJSON: {args.output}")


def print_table(medians, memory, n, latency_n, memory_n, rounds):
    rows = [
        ("publish, each confirm awaited (msg/s)", "publish", "publish_confirm_each", True),
        ("publish, pipelined confirms (msg/s)", "publish", "publish_pipelined", True),
        ("drain, prefetch 1, 1 consumer (tasks/s)", "drain-c1", "tasks_per_s", True),
        ("drain, prefetch 1, 2 consumers (tasks/s)", "drain-c2", "tasks_per_s", True),
        ("worker CPU s per 10k tasks (drain, 1)", "drain-c1", "worker_cpu_s_per_10k", False),
        ("send all, await all results (tasks/s)", "roundtrip", "roundtrip_per_s", True),
        ("client CPU s per 10k tasks (roundtrip)", "roundtrip", "client_cpu_s_per_10k", False),
        ("request/reply latency p50 (ms)", "latency", "p50_ms", False),
        ("request/reply latency p90 (ms)", "latency", "p90_ms", False),
        ("request/reply latency p99 (ms)", "latency", "p99_ms", False),
    ]
    kind = "transient" if os.environ.get("BENCH_TRANSIENT_RESULTS") else "persistent"
    print(f"\n{n} tasks per scenario, latency over {latency_n}, medians of {rounds} interleaved rounds, "
          f"{kind} results\n")
    base = "base" in IMPLS
    print(f"| {'scenario':42} | {'raw C':>9} | {'ours':>9} | {'Celery':>9} | ours/raw | ours/Celery |"
          + (f" {'base':>9} | ours/base |" if base else ""))
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 10}|{'-' * 13}|"
          + (f"{'-' * 11}|{'-' * 11}|" if base else ""))
    for label, scenario, key, _ in rows:
        if scenario not in medians:
            continue
        values = [medians[scenario][impl].get(key) for impl in IMPLS]
        cells = [f"{v:9.2f}" if isinstance(v, float) and v < 100 else (f"{v:9.0f}" if v is not None else f"{'-':>9}")
                 for v in values]
        raw, ours, celery = values[:3]
        ratio_raw = f"{ours / raw:8.2f}" if raw and ours else f"{'-':>8}"
        ratio_celery = f"{ours / celery:11.2f}" if celery and ours else f"{'-':>11}"
        extra = ""
        if base:
            baseline = values[3]
            extra = f" {cells[3]} | {ours / baseline:9.2f} |" if baseline and ours else f" {cells[3]} | {'-':>9} |"
        print(f"| {label:42} | {cells[0]} | {cells[1]} | {cells[2]} | {ratio_raw} | {ratio_celery} |{extra}")
    for impl in memory:
        m = memory[impl]
        print(f"\nworker RSS ({impl}, {memory_n} tasks): idle {m['rss_idle_mb']:.1f} MB, once all were sent "
              f"{m['rss_tenth_mb']:.1f} MB, after all ran {m['rss_end_mb']:.1f} MB")


if __name__ == "__main__":
    main()
