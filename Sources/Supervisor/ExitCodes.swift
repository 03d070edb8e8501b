import JobObjects

/// jobsup's own exit statuses, kept clear of the payload's (as env(1) and
/// container runtimes do). `jobsup run` and `jobsup exec` otherwise exit with
/// the payload's status: its exit code, or 128+N when signal N ended it.
enum SupervisorExit {
    /// A management command (list, stats, signal, …) failed: no such job,
    /// no controller for a limit, permission denied.
    static let commandFailed: Int32 = 1
    /// The command line is wrong: unknown option, bad value, bad -f file.
    /// (ArgumentParser's own code for this is EX_USAGE, 64; jobsup maps it
    /// to 2, as most Unix tools use.)
    static let usage: Int32 = 2
    /// jobsup failed before or around the payload (no cgroup2, no controller, …).
    static let supervisorFailed: Int32 = 125
    /// The command exists but cannot be executed.
    static let cannotExecute: Int32 = 126
    /// The command was not found.
    static let notFound: Int32 = 127

    /// The status of a management command that `error` stopped.
    static func managementStatus(for error: JobObjectError) -> Int32 {
        error.code == .invalidArgument || error.code == .invalidJobName ? usage : commandFailed
    }

    /// The status of `jobsup run` / `jobsup exec` when `error` stopped it.
    static func status(for error: JobObjectError) -> Int32 {
        if error.code == .executableNotFound { return notFound }
        if error.code == .spawnFailed { return cannotExecute }
        if error.code == .invalidArgument || error.code == .invalidJobName { return usage }
        return supervisorFailed
    }
}
