@testable import AMQPTasks
import Testing

/// Where a task goes by its name, without a broker: `[tasks."NAME"] queue`, then `[routes]` in order, then the default.
@Suite struct TaskRouterTests {
    let routes = [
        Route(pattern: "mail.urgent.*", target: .queue("urgent")),
        Route(pattern: "mail.**", target: .exchange("mail", routingKey: "outgoing")),
        Route(pattern: "bulk.*", target: .queue("bulk")),
    ]

    @Test func theFirstMatchingPatternWins() {
        let router = TaskRouter(routes: routes)
        #expect(router.target(for: "mail.urgent.send") == .queue("urgent"))
        #expect(router.target(for: "mail.digest.weekly.send") == .exchange("mail", routingKey: "outgoing"))
    }

    @Test func oneStarStaysWithinOnePartAndTwoCrossParts() {
        let router = TaskRouter(routes: routes)
        #expect(router.target(for: "bulk.import") == .queue("bulk"))
        #expect(router.target(for: "bulk.import.more") == .queue("celery"))
        #expect(router.target(for: "mail.urgent.send.now") == .exchange("mail", routingKey: "outgoing"))
        #expect(router.target(for: "bulkimport") == .queue("celery"), "the dot is literal")
    }

    @Test func aTasksOwnQueueComesBeforeEveryRoute() {
        let router = TaskRouter(routes: routes, taskQueues: ["mail.urgent.send": "vip", "bulk.import": "slow"])
        #expect(router.target(for: "mail.urgent.send") == .queue("vip"))
        #expect(router.target(for: "bulk.import") == .queue("slow"))
        #expect(router.target(for: "bulk.export") == .queue("bulk"), "other tasks still follow the routes")
    }

    @Test func unmatchedTasksGoToTheDefault() {
        #expect(TaskRouter().target(for: "anything") == .queue("celery"), "Celery's default queue")
        let router = TaskRouter(routes: routes, defaultTarget: .exchange("tasks", routingKey: "misc"))
        #expect(router.target(for: "other") == .exchange("tasks", routingKey: "misc"))
        #expect(router.target(for: "other").exchangeAndRoutingKey == ("tasks", "misc"))
        #expect(TaskRouter().target(for: "x").exchangeAndRoutingKey == ("", "celery"))
    }
}
