import Synchronization

/// Which Celery events a worker sends now, as Celery's event groups: `worker` (`worker-online`, `worker-heartbeat`,
/// `worker-offline`) and `task` (`task-received`, `task-started`, `task-succeeded`, …).
///
/// `-E` (`sendEvents`) turns both on from the start. A worker started without it sends none until it is asked:
/// `enable_events` (Flower sends it every 5 s, as does `celery control enable_events`) turns both on, and
/// `disable_events` turns task events off again while heartbeats go on, as on a Celery worker, whose worker group
/// never goes off. One per worker: workers in one process (tests, several services) switch independently.
///
/// Task events carry task data (arguments, results, exception messages). Events turned on by `-E`, or by a request
/// that `remote_control = "full"` obeys, carry it as Celery's do; events turned on under any lower access (the
/// default `standard`, or `read-only`) carry `"<hidden>"` instead (`hidesTaskData`), so a worker shows in Flower, with its tasks' names, states
/// and times, without anyone on the vhost being able to read task data by asking for events.
final class EventToggles: Sendable {
    private struct Groups {
        var worker: Bool
        var task: Bool
        var hideData: Bool = false
    }

    /// What `enable` changed.
    struct Enabled: Sendable, Equatable {
        /// Task events were off and are on now.
        var taskEvents: Bool
        /// Worker events were off and are on now: the worker owes a `worker-online`.
        var workerEvents: Bool
    }

    private let groups: Mutex<Groups>

    init(enabled: Bool) {
        groups = Mutex(Groups(worker: enabled, task: enabled))
    }

    /// True while `worker-online`, `worker-heartbeat` and `worker-offline` are sent.
    var workerEvents: Bool { groups.withLock { $0.worker } }

    /// True while task events are sent.
    var taskEvents: Bool { groups.withLock { $0.task } }

    /// True when task events carry `"<hidden>"` for arguments, results and exception messages.
    var hidesTaskData: Bool { groups.withLock { $0.hideData } }

    /// `enable_events`: both groups on; says which were off. `revealingData` false (a worker below `full`) hides task
    /// data in the task events this turns on; events already on keep what they show.
    func enable(revealingData: Bool = true) -> Enabled {
        groups.withLock { groups in
            let before = groups
            groups.worker = true
            if !groups.task { groups.hideData = !revealingData }
            groups.task = true
            return Enabled(taskEvents: !before.task, workerEvents: !before.worker)
        }
    }

    /// `disable_events`: task events off (worker events stay on); true when they were on.
    func disableTaskEvents() -> Bool {
        groups.withLock { groups in
            defer { groups.task = false }
            return groups.task
        }
    }
}
