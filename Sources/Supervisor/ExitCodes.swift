import JobObjects

/// jobsup's own exit statuses, kept clear of the payload's (as env(1) and
/// container runtimes do).
enum SupervisorExit {
    /// jobsup failed before or around the payload (bad flag, no cgroup2, …).
    static let supervisorFailed: Int32 = 125
    /// The command exists but cannot be executed.
    static let cannotExecute: Int32 = 126
    /// The command was not found.
    static let notFound: Int32 = 127

    static func status(for error: JobObjectError) -> Int32 {
        if error.code == .executableNotFound { return notFound }
        if error.code == .spawnFailed { return cannotExecute }
        return supervisorFailed
    }
}
