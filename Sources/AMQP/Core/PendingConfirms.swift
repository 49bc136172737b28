/// Publishes waiting for confirms, indexed by sequence number in O(1).
///
/// Sequence numbers on a channel are consecutive, so the entry for number `n` sits at `n - firstSequence`;
/// `basic.ack` with `multiple` resolves a prefix. Resolved entries become nil and the prefix is dropped in bulk.
struct PendingConfirms {
    private var entries: [PendingConfirm?] = []
    private var head = 0
    private var firstSequence: UInt64 = 1

    var isEmpty: Bool { head == entries.count }

    mutating func append(_ confirm: PendingConfirm, sequence: UInt64) {
        if isEmpty {
            entries.removeAll(keepingCapacity: true)
            head = 0
            firstSequence = sequence
        }
        entries.append(confirm)
    }

    /// Resolves publish `tag` (and, with `multiple`, all before it) as acked (`nack == nil`) or nacked.
    mutating func resolve(upTo tag: UInt64, multiple: Bool, nack: AMQPError?) {
        guard tag >= firstSequence else { return }
        let last = Int(tag - firstSequence)
        // Below `head` everything is resolved already: a repeated or overlapping confirm changes nothing.
        guard last < entries.count, last >= head else { return }
        let range = multiple ? head...last : last...last
        for index in range {
            guard let entry = entries[index] else { continue }
            entries[index] = nil
            if let returned = entry.returned {
                entry.completion(.failure(returned))
            } else if let nack {
                entry.completion(.failure(nack))
            } else {
                entry.completion(.success(()))
            }
        }
        while head < entries.count, entries[head] == nil { head += 1 }
        if head > 4096, head * 2 > entries.count {
            entries.removeFirst(head)
            firstSequence += UInt64(head)
            head = 0
        }
    }

    /// Marks the oldest waiting mandatory publish to `exchange`/`routingKey` as returned.
    ///
    /// `basic.return` carries no sequence number. RabbitMQ sends it before the confirm of the same message and in
    /// publish order, so the oldest unconfirmed, not yet returned mandatory publish with the same exchange and
    /// routing key is the one returned.
    mutating func markReturned(exchange: String, routingKey: String, error: AMQPError) -> Bool {
        for index in head..<entries.count {
            guard var entry = entries[index], entry.mandatory, entry.returned == nil,
                entry.exchange == exchange, entry.routingKey == routingKey
            else { continue }
            entry.returned = error
            entries[index] = entry
            return true
        }
        return false
    }

    mutating func failAll(_ error: AMQPError) {
        let waiting = entries[head...].compactMap { $0 }
        entries.removeAll()
        head = 0
        for entry in waiting { entry.completion(.failure(error)) }
    }
}
