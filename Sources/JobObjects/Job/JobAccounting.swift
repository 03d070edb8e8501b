import Glibc

/// One snapshot of what a job has used and done.
public struct JobAccounting: Sendable, Equatable {
    /// CPU time in user mode of every process that ran in the job (cpu.stat `user_usec`).
    public var userTime: Duration
    /// CPU time in kernel mode (cpu.stat `system_usec`).
    public var systemTime: Duration
    /// Processes in the job now (cgroup.procs of the job and its descendants).
    public var activeProcesses: Int
    /// Processes spawned or assigned through this handle.
    public var processesStarted: Int
    /// Those of them that have exited, with how.
    public var exits: [ProcessExit]

    public var totalTime: Duration { userTime + systemTime }
}

/// A process of the job that exited.
public struct ProcessExit: Sendable, Hashable {
    public var pid: pid_t
    public var status: ExitStatus
}

/// Parses cpu.stat's microsecond counters.
struct CPUStat: Sendable, Equatable {
    var usage: Duration
    var user: Duration
    var system: Duration

    init(_ text: String) {
        let values = text.keyedValues
        func micros(_ key: Substring) -> Duration { .microseconds(Int64(values[key] ?? "0") ?? 0) }
        usage = micros("usage_usec")
        user = micros("user_usec")
        system = micros("system_usec")
    }
}
