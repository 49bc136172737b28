"""Celery workers and Swift workers consume the same durable queue and share the work, each task done once."""
import collections
import json

from celeryapp import app


def test_mixed_fleet_shares_one_queue(swift_worker, celery_worker, queue, tmp_path):
    celery_worker()
    script = tmp_path / "who.sh"
    script.write_text('#!/bin/sh\nread input\necho "{\\"by\\": \\"swift\\", \\"input\\": $input}"\n')
    script.chmod(0o755)
    swift_worker("--exec", f"mixed.who={script}")
    results = [app.send_task("mixed.who", args=[i], queue=queue) for i in range(200)]
    done = collections.Counter()
    seen = set()
    for result in results:
        value = result.get(timeout=60)
        by = value["by"]
        done["swift" if by == "swift" else "celery"] += 1
        seen.add(result.id)
    assert len(seen) == 200, "every task answered once"
    assert done["swift"] > 0 and done["celery"] > 0, f"both kinds of worker took tasks: {dict(done)}"
