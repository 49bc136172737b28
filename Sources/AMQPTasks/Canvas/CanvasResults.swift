import FoundationEssentials

/// A group that was sent: its id and its members' task ids, in member order.
public struct GroupResult: Sendable, Hashable {
    /// The group id: the `group` header of every member, and `group_id` in every member's result.
    public let id: String
    /// The members' task ids, in the order they were given.
    public let taskIds: [String]

    public init(id: String, taskIds: [String]) {
        self.id = id
        self.taskIds = taskIds
    }

    /// The members' final results, in member order (`timeout` is for all of them together). Throws
    /// `TaskClientError` as `TaskClient.result(for:timeout:)` does. A result is handed out once: ask for a group's
    /// results once, with this or `values(from:timeout:)`.
    public func results(from client: TaskClient, timeout: Duration = .seconds(60)) async throws -> [ResultMessage] {
        let deadline = ContinuousClock.now + timeout
        var results: [ResultMessage] = []
        for id in taskIds {
            results.append(try await client.result(for: id, timeout: max(.zero, deadline - ContinuousClock.now)))
        }
        return results
    }

    /// The members' values, in member order; throws the first failure in member order (a `TaskFailure`), as
    /// Celery's `GroupResult.get()` does.
    public func values(from client: TaskClient, timeout: Duration = .seconds(60)) async throws -> [JSONValue] {
        try await results(from: client, timeout: timeout).map { result in
            switch result.status {
            case .success: return result.result
            case .revoked:
                throw TaskFailure(type: "TaskRevokedError", message: "task \(result.taskId) was revoked", module: "celery.exceptions")
            default: throw result.failure ?? TaskFailure(type: "Exception", message: result.result.jsonString)
            }
        }
    }
}

/// A chord that was sent: its members (a group) and the callback that receives their results.
public struct ChordResult: Sendable, Hashable {
    /// The chord's id: its members' group id, and the name of its queue in the broker (`ChordQueue`).
    public var id: String { group.id }
    /// The members.
    public let group: GroupResult
    /// The callback's task id: its result is the chord's result (a `ChordError` FAILURE when a member failed).
    /// Any process can wait for it on the reply queue it was sent with.
    public let callbackId: String

    public init(group: GroupResult, callbackId: String) {
        self.group = group
        self.callbackId = callbackId
    }
}

/// A chain that was sent: its tasks' ids, in order; each runs with the previous one's result.
public struct ChainResult: Sendable, Hashable {
    public let taskIds: [String]
    /// The last task's id: its result is the chain's result.
    public var lastId: String { taskIds[taskIds.count - 1] }

    public init(taskIds: [String]) { self.taskIds = taskIds }
}
