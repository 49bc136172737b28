import AMQP
import FoundationEssentials

/// One tick of one schedule as the task message it sends (Celery protocol v2): its id derives from the schedule
/// and the tick (`TickID`), it expires `expires` after the tick, and it asks for no result (no `reply_to`).
struct BeatTick {
    let schedule: ScheduleSettings
    let tick: Date
    let router: TaskRouter

    var taskId: String { TickID.id(schedule: schedule.name, tick: tick) }

    /// The exchange and routing key: the schedule's `queue`, else where the configuration routes the task.
    var destination: (exchange: String, routingKey: String) {
        if let queue = schedule.queue { return ("", queue) }
        return router.target(for: schedule.task).exchangeAndRoutingKey
    }

    func message(origin: String, now: Date) -> OutgoingMessage {
        var message = TaskMessage(id: taskId, name: schedule.task, args: schedule.args, kwargs: schedule.kwargs)
        message.origin = origin
        // Celery's beat names the schedule in this header too.
        message.extraHeaders["periodic_task_name"] = .string(schedule.name)
        if let expires = schedule.expires {
            let deadline = tick.addingTimeInterval(expires.secondsValue)
            message.expires = CeleryTime.format(deadline)
            message.expiration = String(Int(min(max(0, deadline.timeIntervalSince(now) * 1000), 1e15)))
        }
        let (properties, body) = message.encode()
        let (exchange, routingKey) = destination
        // Mandatory: a tick that no queue takes (an exchange without a matching binding) comes back at the commit.
        return OutgoingMessage(
            body: body, exchange: exchange, routingKey: routingKey, properties: properties, mandatory: true)
    }
}
