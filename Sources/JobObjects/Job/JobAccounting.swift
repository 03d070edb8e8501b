import Glibc

/// One snapshot of what a job has used and done (Windows basic and
/// extended accounting). Fields whose controller is not enabled for the job
/// are nil; CPU time comes from `cpu.stat`, which every cgroup has.
public struct JobAccounting: Sendable, Equatable {
    /// CPU time in user mode of every process that ran in the job (cpu.stat `user_usec`).
    public var userTime: Duration
    /// CPU time in kernel mode (cpu.stat `system_usec`).
    public var systemTime: Duration
    /// All CPU time (cpu.stat `usage_usec`, the scheduler's exact count);
    /// user and system time are its split, each rounded down, so their sum
    /// may fall short of it by a microsecond or two.
    public var totalTime: Duration
    /// Processes in the job now (cgroup.procs of the job and its descendants).
    public var activeProcesses: Int
    /// Threads in the job now (cgroup.threads).
    public var activeThreads: Int
    /// Processes spawned or assigned through this handle.
    public var processesStarted: Int
    /// Those of them that have exited, with how.
    public var exits: [ProcessExit]
    /// Processes forked inside the job by its members, and how many of them
    /// have exited; nil where the host does not allow the kernel's process
    /// events connector (it needs root).
    public var descendantsStarted: Int?
    /// Of those, how many have exited.
    public var descendantsExited: Int?

    /// Memory in use now and the most ever (`memory.current`, `memory.peak`).
    public var memoryCurrent: UInt64?
    /// Most memory the job used at once (`memory.peak`, Linux 5.19).
    public var memoryPeak: UInt64?
    /// Swap in use now (`memory.swap.current`).
    public var swapCurrent: UInt64?
    /// Page faults, all and major (`memory.stat` pgfault, pgmajfault).
    public var pageFaults: UInt64?
    /// Page faults that needed I/O (`memory.stat` pgmajfault).
    public var majorPageFaults: UInt64?
    /// IO summed over devices (`io.stat` rbytes, wbytes, rios, wios).
    public var ioReadBytes: UInt64?
    /// Bytes written (`io.stat` wbytes, all devices).
    public var ioWriteBytes: UInt64?
    /// Read operations (`io.stat` rios).
    public var ioReadOperations: UInt64?
    /// Write operations (`io.stat` wios).
    public var ioWriteOperations: UInt64?
    /// The most tasks ever in the job (`pids.peak`, Linux 6.1+).
    public var peakProcesses: Int?

    /// Limit hits: OOM kills and memory.max/memory.high events (`memory.events`),
    /// forks refused by pids.max (`pids.events`).
    public var outOfMemoryKills: Int?
    /// Times `memory.max` was hit.
    public var memoryLimitReached: Int?
    /// Times `memory.high` was crossed.
    public var memoryHighCrossed: Int?
    /// Forks refused by `pids.max`.
    public var processLimitReached: Int?
    /// Time the CPU cap held the job back (`cpu.stat` throttled_usec, nr_throttled).
    public var throttledTime: Duration?
    /// Periods in which `cpu.max` throttled the job (`cpu.stat` nr_throttled).
    public var throttledPeriods: Int?
}

/// A process of the job that exited.
public struct ProcessExit: Sendable, Hashable {
    /// The process.
    public var pid: pid_t
    /// How it ended.
    public var status: ExitStatus
}

/// Parses cpu.stat's microsecond counters.
struct CPUStat: Sendable, Equatable {
    var usage: Duration
    var user: Duration
    var system: Duration
    var throttled: Duration?
    var throttledPeriods: Int?

    init(_ text: String) {
        let values = text.keyedValues
        func micros(_ key: Substring) -> Duration { .microseconds(Int64(values[key] ?? "0") ?? 0) }
        usage = micros("usage_usec")
        user = micros("user_usec")
        system = micros("system_usec")
        throttled = values["throttled_usec"].flatMap { Int64($0) }.map(Duration.microseconds)
        throttledPeriods = values["nr_throttled"].flatMap { Int($0) }
    }
}

extension JobAccounting {
    /// Reads the kernel's side of the accounting from `directory`.
    static func read(from directory: CgroupDirectory, pids: [pid_t]) throws(JobObjectError) -> JobAccounting {
        let cpu = CPUStat(try directory.read("cpu.stat"))
        func keyed(_ file: String) -> [Substring: Substring]? {
            guard case .success(let text) = FileContents.read(at: directory.fd, file) else { return nil }
            return text.keyedValues
        }
        func number(_ file: String) -> UInt64? {
            guard case .success(let text) = FileContents.read(at: directory.fd, file) else { return nil }
            return UInt64(text.trimmingWhitespace)
        }
        var threads = 0
        for dir in [directory.path] + directory.descendants() {
            if case .success(let text) = FileContents.read(dir + "/cgroup.threads") { threads += text.nonEmptyLines.count }
        }
        var accounting = JobAccounting(
            userTime: cpu.user, systemTime: cpu.system, totalTime: cpu.usage, activeProcesses: pids.count,
            activeThreads: threads, processesStarted: 0, exits: [])
        accounting.memoryCurrent = number("memory.current")
        accounting.memoryPeak = number("memory.peak")
        accounting.swapCurrent = number("memory.swap.current")
        if let stat = keyed("memory.stat") {
            accounting.pageFaults = stat["pgfault"].flatMap { UInt64($0) }
            accounting.majorPageFaults = stat["pgmajfault"].flatMap { UInt64($0) }
        }
        if case .success(let text) = FileContents.read(at: directory.fd, "io.stat") {
            var sums: [Substring: UInt64] = [:]
            for line in text.nonEmptyLines {
                for field in line.split(separator: " ").dropFirst() {
                    let pair = field.split(separator: "=")
                    if pair.count == 2, let value = UInt64(pair[1]) { sums[pair[0], default: 0] += value }
                }
            }
            accounting.ioReadBytes = sums["rbytes"] ?? 0
            accounting.ioWriteBytes = sums["wbytes"] ?? 0
            accounting.ioReadOperations = sums["rios"] ?? 0
            accounting.ioWriteOperations = sums["wios"] ?? 0
        }
        accounting.peakProcesses = number("pids.peak").map { Int($0) }
        if let events = keyed("memory.events") {
            accounting.outOfMemoryKills = events["oom_kill"].flatMap { Int($0) }
            accounting.memoryLimitReached = events["max"].flatMap { Int($0) }
            accounting.memoryHighCrossed = events["high"].flatMap { Int($0) }
        }
        accounting.processLimitReached = keyed("pids.events")?["max"].flatMap { Int($0) }
        accounting.throttledTime = cpu.throttled
        accounting.throttledPeriods = cpu.throttledPeriods
        return accounting
    }
}
