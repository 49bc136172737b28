#!/usr/bin/env python3
"""The engine of Benchmarks/callgrind: instructions per task, ours beside raw rabbitmq-c, counted by callgrind.

Instruction counts do not depend on how busy the machine is, so they are the stable figure beside the time-based
ones of Benchmarks/run. Each side runs twice under `valgrind --tool=callgrind` on the same broker: once doing COUNT
tasks and once doing none (start-up, connection, shutdown only); (instructions(COUNT) - instructions(0)) / COUNT is
the cost of one task with the start-up cost taken out.

  worker   the consumer draining COUNT queued no-op tasks at prefetch 1 (the queue is filled before it starts):
           amqp-worker --demo-tasks (demo.echo, no result) vs `raw_bench consume` (consume, ack)
  client   the client sending COUNT tasks (pipelined confirms) and awaiting every result, against a native
           replying worker of the same implementation: amqp-tasks-bench roundtrip vs `raw_bench roundtrip`

Prints one line per mode; with --top K also the K functions of ours with the most inclusive instructions per task
(the difference of the two runs per function, demangled). The callgrind files stay in .build/callgrind/ for
callgrind_annotate or kcachegrind.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench  # noqa: E402  (the same broker helpers, binaries and workers as Benchmarks/run)

ROOT = bench.ROOT
OUT = ROOT / ".build" / "callgrind"
# Ours runs as a release build with the Swift runtime and Foundation linked in statically (Benchmarks/callgrind builds
# it into .build/static): valgrind 3.19 (Debian 12) crashes loading the toolchain's shared lib_FoundationICU.so.
STATIC = pathlib.Path(os.environ.get("CALLGRIND_OURS_DIR", ROOT / ".build" / "static" / "release"))
DEADLINE_S = 1800  # a safety net only: callgrind runs the worker some 50 times slower than natively


def callgrind(out_file, command):
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", "--dump-instr=no",
            "--collect-jumps=no", "--separate-recs=1", *command]


def total_instructions(out_file):
    """The `summary:` (or `totals:`) line callgrind writes at exit: instructions executed by all threads."""
    for line in pathlib.Path(out_file).read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    sys.exit(f"callgrind: no summary in {out_file} (did the process exit cleanly?)")


def without_debug_info(binary):
    """A copy of `binary` with its DWARF stripped (symbols kept): valgrind 3.19 cannot read the DWARF 5 forms the
    Swift toolchain's clang writes and gives up; function names come from the symbol table all the same."""
    copy = OUT / f"{binary.name}-{binary.parent.parent.name}"
    if not copy.exists() or copy.stat().st_mtime < binary.stat().st_mtime:
        subprocess.run(["objcopy", "--strip-debug", str(binary), str(copy)], check=True)
    return copy


def wait_until(condition, what, process=None):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if process is not None and process.poll() is not None:
            sys.exit(f"callgrind: the process under callgrind exited ({process.returncode}) while waiting for {what}; "
                     f"run its command under valgrind by hand to see why")
        if time.monotonic() > deadline:
            sys.exit(f"callgrind: gave up waiting for {what} after {DEADLINE_S} s")
        time.sleep(0.2)


def unacknowledged(queue):
    """Messages delivered but not yet acked on `queue` (rabbitmqctl: exact, unlike the management API's samples)."""
    listing = subprocess.run([str(ROOT / "Deploy" / "broker"), "ctl", "list_queues", "-q", "--no-table-headers",
                              "name", "messages_unacknowledged"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == queue:
            return int(fields[1])
    return 0


def worker_run(broker, impl, count, tag):
    """One drain under callgrind; returns the callgrind file."""
    queue = f"bench.callgrind.{impl}"
    broker.reset(queue)
    if count:
        bench.fill(queue, count)
    out_file = OUT / f"worker-{impl}-{tag}.out"
    if impl == "raw":
        process = subprocess.Popen(callgrind(out_file, [str(bench.RAW), "consume", bench.HOST, bench.PORT, queue,
                                                        str(count)]),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process.wait(timeout=DEADLINE_S)
    else:
        process = subprocess.Popen(callgrind(out_file, [str(without_debug_info(STATIC / "amqp-worker")), "--url", bench.URL,
                                                        "--demo-tasks", "--queue", queue, "--concurrency", "1",
                                                        "--prefetch", "1", "--log-level", "warning"]),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: broker.channel.queue_declare(queue, passive=True).consumer_count >= 1, "the consumer",
                   process)
        wait_until(lambda: broker.depth(queue) == 0, "the queue to drain", process)
        wait_until(lambda: unacknowledged(queue) == 0, "the last ack", process)
        bench.stop([process])
    if process.returncode not in (0, None):
        sys.exit(f"callgrind: the {impl} worker exited {process.returncode}")
    return out_file


def client_run(broker, impl, count, tag):
    """One send-all/await-all under callgrind, against a native replying worker; returns the callgrind file."""
    queue = f"bench.callgrind.client.{impl}"
    broker.reset(queue)
    workers = bench.start_replying_worker(impl, queue)
    wait_until(lambda: broker.channel.queue_declare(queue, passive=True).consumer_count >= 1, "the replying worker")
    out_file = OUT / f"client-{impl}-{tag}.out"
    command = bench.client_command(impl, "roundtrip", queue, count)
    if impl != "raw":
        command[0] = str(without_debug_info(STATIC / "amqp-tasks-bench"))
    process = subprocess.run(callgrind(out_file, command),
                             capture_output=True, text=True, timeout=DEADLINE_S)
    bench.stop(workers)
    if process.returncode != 0:
        sys.exit(f"callgrind: the {impl} client failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return out_file


# Mangled Swift names of our own modules' functions ($s4AMQP..., $s9AMQPTasks..., closures in them likewise).
OUR_MODULES = r"^\$s(4AMQP|9AMQPTasks|14AMQPTasksDemo|11amqp_worker)[^a-z]"


# Async functions and their partial functions: callgrind sees each resumption called from the executor, so what it
# calls "inclusive" for them runs on into the rest of the pipeline; synchronous functions' inclusive costs are sound.
ASYNC = r"Ya|TY\d*_|TQ\d*_"


def by_function(out_file, inclusive):
    """Instructions per function (callgrind_annotate, inclusive or self), by mangled name."""
    listing = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
                              str(out_file)],
                             capture_output=True, text=True, check=True).stdout
    functions = {}
    for line in listing.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.+?)(?:\s+\[[^\]]*\])?$", line)
        if match and ":" in match.group(2):
            name = match.group(2).split(":", 1)[1]
            functions[name] = functions.get(name, 0) + int(match.group(1).replace(",", ""))
    return functions


def demangle(names):
    try:
        result = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names),
                                capture_output=True, text=True, check=True)
        return result.stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return names


def print_top(mode, impl, full, empty, count, top, per_task_total):
    """The costliest functions per task, self and inclusive. Inclusive figures of async code are approximate:
    callgrind sees the executor re-entering functions (swift_task_switch, job run loops) as recursion, and
    callgrind_annotate counts such cycles more than once, so entries above the whole per-task cost are left out; the
    third list, our modules' synchronous functions, is the one to read for where our own code spends."""
    for inclusive, ours_only in ((False, False), (True, False), (True, True)):
        with_tasks, without = by_function(full, inclusive), by_function(empty, inclusive)
        per_task = sorted(((value - without.get(name, 0)) / count, name) for name, value in with_tasks.items()
                          if not ours_only or (re.search(OUR_MODULES, name) and not re.search(ASYNC, name)))
        per_task = [(cost, name) for cost, name in reversed(per_task)
                    if 0 < cost <= per_task_total * 1.01][:top]
        kind = "inclusive, our synchronous functions" if ours_only else "inclusive" if inclusive else "self"
        print(f"\n{mode}, {impl}: top {top} functions by {kind} instructions per task (of {per_task_total:,.0f}; "
              f"COUNT run minus empty run)")
        for (cost, _), pretty in zip(per_task, demangle([name for _, name in per_task])):
            print(f"{cost:12,.0f} {100 * cost / per_task_total:5.1f}%  {pretty[:150]}")


def measure(broker, mode, impl, count):
    run = worker_run if mode == "worker" else client_run
    print(f"callgrind: {mode} {impl}: {count} tasks", file=sys.stderr, flush=True)
    full = run(broker, impl, count, str(count))
    print(f"callgrind: {mode} {impl}: no tasks (start-up cost)", file=sys.stderr, flush=True)
    empty = run(broker, impl, 0, "0")
    return (total_instructions(full) - total_instructions(empty)) / count, full, empty


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modes", nargs="*", metavar="worker|client", help="what to measure (default both)")
    parser.add_argument("--count", type=int, default=10_000, help="tasks per measured run (default 10,000)")
    parser.add_argument("--top", type=int, default=0, help="also list ours' K costliest functions per task")
    parser.add_argument("--only", choices=["ours", "raw"], help="measure one side only")
    args = parser.parse_args()
    for mode in args.modes:
        if mode not in ("worker", "client"):
            parser.error(f"unknown mode {mode!r}: worker or client")
    OUT.mkdir(parents=True, exist_ok=True)
    broker = bench.Broker()
    for mode in args.modes or ["worker", "client"]:
        figures, files = {}, {}
        for impl in ([args.only] if args.only else ["ours", "raw"]):
            figures[impl], *files[impl] = measure(broker, mode, impl, args.count)
        what = "drain, prefetch 1" if mode == "worker" else "send all, await all"
        cells = ", ".join(f"{impl} {value:,.0f}" for impl, value in figures.items())
        ratio = f", ours/raw {figures['ours'] / figures['raw']:.2f}" if len(figures) == 2 else ""
        print(f"{mode}: instructions/task {cells}{ratio} ({what}, {args.count} tasks, callgrind)", flush=True)
        if args.top and "ours" in files:
            print_top(mode, "ours", *files["ours"], args.count, args.top, figures["ours"])


if __name__ == "__main__":
    main()
