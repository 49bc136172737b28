"""The periodic scheduler (`amqp-worker --beat`): several instances, one sender. Ticks are counted by their task
ids on the target queue: each id is the UUIDv5 of schedule name and tick time (README, Periodic tasks), so the test
knows every tick's id in advance and sees any tick sent twice, or skipped."""
import datetime
import os
import signal
import time
import uuid

import amqp
import pytest

from conftest import amqp_task, binary

NAMESPACE = uuid.UUID("6f1f4b0e-5c1a-4f4e-9a53-2f3c1b7d0e61")
PORT = int(os.environ.get("AMQP_BROKER_PORT", "5672"))


def tick_id(schedule, tick_seconds):
    stamp = datetime.datetime.fromtimestamp(tick_seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(uuid.uuid5(NAMESPACE, f"{schedule}@{stamp}"))


class Ticks:
    """Consumes the target queue and maps each task id back to its tick (a whole second)."""

    def __init__(self, schedule, queue):
        self.schedule = schedule
        start = int(time.time()) - 60
        self.slot_of = {tick_id(schedule, t): t for t in range(start, start + 900)}
        self.received = []  # tick seconds, in arrival order, duplicates kept
        self.unknown = []
        self.connection = amqp.Connection(host=f"127.0.0.1:{PORT}", userid="guest", password="guest")
        self.connection.connect()
        self.channel = self.connection.channel()
        self.channel.basic_consume(queue, callback=self._take, no_ack=True)

    def _take(self, message):
        headers = message.properties.get("application_headers", {})
        assert headers.get("periodic_task_name") == self.schedule, headers
        slot = self.slot_of.get(headers.get("id"))
        (self.received if slot is not None else self.unknown).append(slot if slot is not None else headers.get("id"))

    def wait_for(self, condition, what, seconds=60):
        deadline = time.time() + seconds
        while not condition():
            if time.time() > deadline:
                pytest.fail(f"timed out waiting for {what}; received ticks {self.received}")
            try:
                self.connection.drain_events(timeout=0.2)
            except TimeoutError:
                pass
            except OSError:  # py-amqp raises socket.timeout, an OSError
                pass

    def close(self):
        self.connection.close()


def schedule_config(tmp_path, queue, schedule, task, extra=""):
    """Writes a configuration with `queue` and one schedule sending `task(2, 3)` to it every second."""
    config = tmp_path / "beat.toml"
    config.write_text(f"""
[[queues]]
name = "{queue}"

[schedules."{schedule}"]
task = "{task}"
every = "1s"
args = [2, 3]
queue = "{queue}"
{extra}
""")
    return config


@pytest.fixture
def beat_setup(tmp_path, queue):
    """A configuration with one schedule every second sending `demo.add` to `queue`, its queue declared."""
    schedule = f"interop.beat.{uuid.uuid4().hex[:8]}"
    config = schedule_config(tmp_path, queue, schedule, "demo.add", 'expires = "1m"')
    status, out, err = amqp_task("declare", "--config", str(config))
    assert status == 0, err
    yield schedule, str(config)
    connection = amqp.Connection(host=f"127.0.0.1:{PORT}", userid="guest", password="guest")
    connection.connect()
    connection.channel().queue_delete(f"amqp-tasks.beat.state.{schedule}")
    connection.close()


def start_beat(processes, config, name):
    return processes.start(
        name, [binary("amqp-worker"), "--beat", "--config", config, "--hostname", f"{name}@interop"],
        f"beat: {name}@interop schedules")


def leader_of(config):
    status, out, err = amqp_task("schedules", "--config", config)
    assert status == 0, err
    line = [line for line in out.splitlines() if line.startswith("leader: ")]
    assert len(line) == 1, out
    return line[0].removeprefix("leader: ").split(" ")[0], out


def wait_for_leader(config, other_than=None, seconds=60):
    deadline = time.time() + seconds
    while True:
        leader, out = leader_of(config)
        if leader.endswith("@interop") and leader != other_than:
            return leader, out
        if time.time() > deadline:
            pytest.fail(f"no new leader: {out}")
        time.sleep(0.2)


def test_three_beats_send_each_tick_once_through_a_leader_kill_and_a_full_restart(processes, queue, beat_setup):
    schedule, config = beat_setup
    ticks = Ticks(schedule, queue)
    beats = {name: start_beat(processes, config, name) for name in ("beat1", "beat2", "beat3")}
    leader, out = wait_for_leader(config)
    assert schedule in out and "every 1s" in out, out

    # 20 consecutive tick slots: one sender, so 20 ticks (19 if the leader was stalled past a whole tick), none twice.
    ticks.wait_for(lambda: ticks.received, "the first tick")
    first = ticks.received[0]
    ticks.wait_for(lambda: max(ticks.received) >= first + 19, "20 tick slots")
    in_window = [t for t in ticks.received if first <= t <= first + 19]
    assert len(in_window) == len(set(in_window)), f"a tick was sent twice: {sorted(in_window)}"
    assert 19 <= len(set(in_window)) <= 20, f"expected 20 ± 1 ticks in 20 slots, got {sorted(set(in_window))}"
    assert ticks.unknown == [], ticks.unknown

    # kill -9 the leader: another instance takes over and ticks resume.
    assert leader == leader_of(config)[0]
    process, log = beats[leader.split("@")[0]]
    assert "leads" in log.read_text()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    killed_at = time.time()
    new_leader, _ = wait_for_leader(config, other_than=leader)
    ticks.wait_for(lambda: max(ticks.received) > killed_at + 1, "a tick after the kill")
    assert len(ticks.received) == len(set(ticks.received)), f"a tick was sent twice: {sorted(ticks.received)}"

    # Stop every instance; ticks are missed; one instance restarted sends the latest missed tick once, then goes on.
    for name, (process, log) in beats.items():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, log.read_text()
    assert leader_of(config)[0] == "none", leader_of(config)[1]
    ticks.wait_for(lambda: time.time() >= max(ticks.received) + 3.5, "three ticks missed")
    last_before = max(ticks.received)
    _, out = leader_of(config)
    assert "now (missed tick)" in out, out
    restarted, log = start_beat(processes, config, "beat4")
    wait_for_leader(config)
    ticks.wait_for(lambda: max(ticks.received) > last_before + 5, "ticks after the restart")
    after = sorted(t for t in ticks.received if t > last_before)
    assert len(ticks.received) == len(set(ticks.received)), f"a tick was sent twice: {sorted(ticks.received)}"
    catch_up = after[0]
    assert catch_up >= last_before + 3, f"the catch-up tick is the latest missed one: {after}, last before {last_before}"
    assert "catching up" in log.read_text(), log.read_text()
    # The ticks missed before the catch-up one were not sent; the ones after it all were (bar one stalled tick).
    assert not [t for t in ticks.received if last_before < t < catch_up], after
    assert len(after) >= (after[-1] - catch_up + 1) - 1, after
    assert ticks.unknown == [], ticks.unknown
    ticks.close()


def test_a_celery_worker_runs_a_tick(processes, queue, tmp_path, celery_worker):
    schedule = f"interop.beat.celery.{uuid.uuid4().hex[:8]}"
    config = schedule_config(tmp_path, queue, schedule, "py.add")
    _, celery_log = celery_worker()
    start_beat(processes, str(config), "beat-celery")
    start = int(time.time())
    expected = {tick_id(schedule, t) for t in range(start - 5, start + 300)}
    deadline = time.time() + 60
    while not any(f"Task py.add[{i}] succeeded" in celery_log.read_text() for i in expected):
        if time.time() > deadline:
            pytest.fail(f"Celery ran no tick:\n{celery_log.read_text()}")
        time.sleep(0.2)
    connection = amqp.Connection(host=f"127.0.0.1:{PORT}", userid="guest", password="guest")
    connection.connect()
    connection.channel().queue_delete(f"amqp-tasks.beat.state.{schedule}")
    connection.close()


def test_a_cron_schedule_in_a_named_time_zone_runs_on_that_zones_clock(processes, queue, tmp_path):
    # amqp-worker links FoundationEssentials only, which knows no zone by name: AMQPTasks' TimeZones loads
    # FoundationInternationalization when a schedule names one. Without it this configuration is refused
    # ("unknown time zone") and the worker exits. 09:00 in Paris is 08:00 UTC in winter, 07:00 in summer.
    schedule = f"interop.beat.zone.{uuid.uuid4().hex[:8]}"
    config = tmp_path / "zone.toml"
    config.write_text(f"""
[[queues]]
name = "{queue}"

[schedules."{schedule}"]
task = "demo.add"
cron = "0 9 * * *"
timezone = "Europe/Paris"
args = [2, 3]
queue = "{queue}"
""")
    _, log = start_beat(processes, str(config), "beat-zone")
    line = f"beat: {schedule}: "
    deadline = time.time() + 60
    while line not in log.read_text():
        if time.time() > deadline:
            pytest.fail(f"the schedule was not planned; the log:\n{log.read_text()}")
        time.sleep(0.1)
    planned = [text for text in log.read_text().splitlines() if line in text][0]
    assert "0 9 * * * (Europe/Paris)" in planned, planned
    next_tick = planned.split(", next ")[1]
    assert "T08:00:00" in next_tick or "T07:00:00" in next_tick, planned
    connection = amqp.Connection(host=f"127.0.0.1:{PORT}", userid="guest", password="guest")
    connection.connect()
    connection.channel().queue_delete(f"amqp-tasks.beat.state.{schedule}")
    connection.close()
