"""A task for `amqp-worker --exec` that proves tasks run at the same time, without timing: it reads the task's JSON
on stdin, with args [directory, name, parties], writes directory/name, then waits until `parties` files are in the
directory (a barrier) and prints their names. With parties 0 it waits for directory/open instead (a gate the test
opens). It gives up after 120 s (a safety net, never the assertion): exit 1 saying how many arrived."""
import json
import os
import sys
import time

task = json.load(sys.stdin)
directory, name, parties = task["args"]
os.makedirs(directory, exist_ok=True)
with open(os.path.join(directory, name), "w") as mark:
    mark.write(task["id"])
deadline = time.time() + 120
while True:
    present = sorted(entry for entry in os.listdir(directory) if entry != "open")
    if parties == 0 and os.path.exists(os.path.join(directory, "open")):
        break
    if parties and len(present) >= parties:
        break
    if time.time() > deadline:
        print(f"rendezvous not reached: {len(present)} of {parties or 'the gate'} after 120 s", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.05)
print(json.dumps({"name": name, "present": present}))
