/// The version of amqp-tasks: what `amqp-worker --version` and `amqp-task --version` print, and what workers
/// report as `sw_ver` in their events and `celery inspect stats`. CHANGELOG.md lists what each version holds.
public enum AMQPTasksVersion {
    /// The one version string of this release (semantic versioning); change it here, with a CHANGELOG.md entry.
    public static let current = "0.1.0"
}
