import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Time zones for schedules without linking FoundationInternationalization (and ICU, 3 MB of an idle worker's
/// RSS) into every worker: FoundationEssentials knows only fixed offsets, so a named zone (`Europe/Paris`) loads that library at
/// the moment a schedule names one, and then `TimeZone(identifier:)` finds its rules.
public enum TimeZones {
    /// UTC: a fixed zone FoundationEssentials has without ICU (its identifier is `GMT`).
    public static let utc = TimeZone.gmt

    /// The zone named `identifier` (an IANA name such as `Europe/Paris`; `UTC` and `GMT` give `utc`), or nil when
    /// there is no such zone. Throws `TimeZoneSupportError` when FoundationInternationalization cannot be loaded
    /// (a build without the Swift runtime's shared libraries, e.g. `--static-swift-stdlib`).
    public static func named(_ identifier: String) throws(TimeZoneSupportError) -> TimeZone? {
        if identifier == "UTC" || identifier == "GMT" { return utc }
        try loadInternationalization()
        return TimeZone(identifier: identifier)
    }

    /// The local zone's offset east of UTC, in seconds, now: what the C library makes of `TZ` and `/etc/localtime`.
    public static func localSecondsFromGMT() -> Int {
        tzset()
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return 0 }
        return parts.tm_gmtoff
    }

    private static let loaded: Result<Void, TimeZoneSupportError> = {
        if dlopen("libFoundationInternationalization.so", RTLD_NOW | RTLD_GLOBAL) != nil { return .success(()) }
        let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
        return .failure(TimeZoneSupportError(reason: reason))
    }()

    private static func loadInternationalization() throws(TimeZoneSupportError) {
        try loaded.get()
    }
}

/// FoundationInternationalization, which knows the rules of named time zones, could not be loaded.
public struct TimeZoneSupportError: Error, CustomStringConvertible {
    /// What the dynamic loader said.
    public let reason: String

    public var description: String {
        "named time zones need the Swift runtime's libFoundationInternationalization.so, which could not be loaded (\(reason)); install the Swift runtime libraries beside amqp-worker, or use \"UTC\""
    }
}
