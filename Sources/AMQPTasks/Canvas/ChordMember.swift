/// One member's part in its chord, as its worker recorded it: what `ChordBarrier.join` adds to the chord's state.
struct ChordMember: Sendable, Hashable {
    /// The chord's id (the member's `group` header).
    let chordId: String
    /// The member's place in the chord (`group_index`).
    let index: Int
    let taskId: String
    let rootId: String?
    /// The queue the member came from: where the callback and errbacks go when their signatures name none.
    let queue: String
    let contribution: ChordState.Contribution
    /// The most bytes the chord's state (and so its callback's results) may have once this member joins: the
    /// worker's `maxResultSize`. A member that would take it past fails the chord instead (`ChordBarrier`).
    var maxStateSize: Int = WorkerConfiguration.defaultMaxResultSize
}

/// What joining a member did.
enum ChordJoin: Sendable, Hashable {
    /// Joined; the chord waits for more members.
    case waiting(joined: Int, of: Int)
    /// This member was the last: the callback was sent.
    case fired(callbackId: String)
    /// This member failed: the chord's FAILURE and its errbacks were sent.
    case failed(callbackId: String)
    /// Joined before (a redelivered member), or the chord finished already: nothing was sent.
    case unchanged
    /// The chord's queue does not exist: the chord finished (or expired), or its sender did not make it (a Celery
    /// client's chord, which belongs to its own result backend).
    case gone
    /// No chord is kept here (an in-memory outbox).
    case notTracked
}
