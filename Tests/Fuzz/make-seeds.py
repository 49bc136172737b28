#!/usr/bin/env python3
"""Writes the fuzz seed corpus into OUTDIR: every task, result and event message of the Celery captures
(Tests/Fixtures/celery, made by its make-captures from a real Celery), the example configuration, and a few JSON texts,
each framed as FuzzTargets expects (first byte = decoder). Fails when the captures are missing."""
import json
import pathlib
import sys

repo = pathlib.Path(__file__).resolve().parents[2]
captures = repo / "Tests" / "Fixtures" / "celery"
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
if not (captures / "task_messages.json").exists():
    sys.exit(f"make-seeds: the Celery captures are missing: expected {captures}/task_messages.json"
             " (Tests/Fixtures/celery/make-captures makes them)")

count = 0


def seed(decoder: int, text: bytes):
    global count
    (out / f"seed-{decoder}-{count:03d}").write_bytes(bytes([decoder]) + text)
    count += 1


for message in json.loads((captures / "task_messages.json").read_text())["messages"]:
    headers = json.dumps(message["properties"].get("headers") or {}).encode()
    seed(0, headers + b"\n" + message["body_raw"].encode())
for message in json.loads((captures / "result_messages.json").read_text())["messages"]:
    seed(1, message["body_raw"].encode())
    seed(3, message["body_raw"].encode())
for message in json.loads((captures / "event_messages.json").read_text())["messages"]:
    seed(3, message["body_raw"].encode())
seed(2, (repo / "Deploy" / "examples" / "amqp-tasks.toml").read_bytes())
seed(2, b'[broker]\nurl = "amqp://guest:guest@127.0.0.1:5672/%2f"\n[[queues]]\nname = "q"\ntype = "quorum"\n')
for text in ('{"a": [1, 2.5, -0.0, 1e308, "\\u00e9\\ud83d\\ude00"], "b": null}', "[[], {}, {}]", '"x"', "123456789012345678901"):
    seed(3, text.encode())
print(f"make-seeds: {count} seeds in {out}")
