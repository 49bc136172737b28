import FoundationEssentials

/// The task id of one tick of one schedule: a version 5 (SHA-1, name-based) UUID of `"<schedule>@<tick>"`, the
/// tick in UTC as `2026-11-27T05:30:00Z`, in the namespace `TickID.namespace`. Every instance derives the same id
/// for the same tick, so a tick sent twice is visible as a duplicate id; in Python:
/// `uuid.uuid5(uuid.UUID("6f1f4b0e-5c1a-4f4e-9a53-2f3c1b7d0e61"), "reports.nightly@2026-11-27T05:30:00Z")`.
public enum TickID {
    /// The namespace UUID of tick ids.
    public static let namespace = UUID(uuidString: "6f1f4b0e-5c1a-4f4e-9a53-2f3c1b7d0e61")!

    /// The id of `schedule`'s tick at `tick` (lowercase, Celery's form of a UUID).
    public static func id(schedule: String, tick: Date) -> String {
        uuid5(namespace: namespace, name: "\(schedule)@\(timestamp(tick))").lowercasedString
    }

    /// `tick` as `2026-11-27T05:30:00Z` (whole seconds, UTC): how ticks are named in ids, state and logs.
    public static func timestamp(_ tick: Date) -> String {
        let seconds = Int(tick.timeIntervalSince1970.rounded(.down))
        let days = LocalTime.floorDiv(seconds, 86_400)
        let (year, month, day) = LocalTime.civil(fromDays: days)
        let inDay = seconds - days * 86_400
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(inDay / 3600)):\(two(inDay / 60 % 60)):\(two(inDay % 60))Z"
    }

    /// RFC 4122 version 5 UUID.
    static func uuid5(namespace: UUID, name: String) -> UUID {
        let space = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        var hash = SHA1.digest(space + Array(name.utf8))
        hash[6] = (hash[6] & 0x0F) | 0x50
        hash[8] = (hash[8] & 0x3F) | 0x80
        return UUID(
            uuid: (
                hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], hash[8], hash[9], hash[10],
                hash[11], hash[12], hash[13], hash[14], hash[15]
            ))
    }
}
