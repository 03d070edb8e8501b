/// The limits of a job, as one `Sendable` value: set at creation, updated
/// on a live job, read back. A nil field is left as the kernel has it.
///
/// Each field maps to one cgroup v2 file (see the README's limits table);
/// only the controllers the set fields need are enabled for the job.
///
/// ```swift
/// var limits = JobLimits()
/// limits.memoryMax = 512 << 20          // memory.max
/// limits.maxProcesses = 64              // pids.max
/// limits.cpu = .cpus(1.5)               // cpu.max "150000 100000"
/// let job = try JobObject.create(name: "build", limits: limits)
/// ```
public struct JobLimits: Sendable, Equatable {
    // MARK: memory (Windows JOB_MEMORY and working set)

    /// Hard limit in bytes (`memory.max`); past it the kernel reclaims, then OOM-kills.
    public var memoryMax: UInt64?
    /// Throttle limit in bytes (`memory.high`): reclaim pressure, no OOM kill.
    public var memoryHigh: UInt64?
    /// Best-effort protection in bytes (`memory.low`).
    public var memoryLow: UInt64?
    /// Hard protection in bytes (`memory.min`).
    public var memoryMin: UInt64?
    /// Swap limit in bytes (`memory.swap.max`).
    public var swapMax: UInt64?
    /// On an OOM kill, kill the whole job rather than one process (`memory.oom.group`).
    public var killJobOnOutOfMemory: Bool?

    // MARK: processes (Windows ACTIVE_PROCESS limit)

    /// Tasks in the job at once (`pids.max`). The kernel counts threads as
    /// well as processes, so a multithreaded payload needs room for its threads.
    public var maxProcesses: Int?

    // MARK: cpu (Windows CPU rate control)

    /// Hard CPU cap (`cpu.max`).
    public var cpu: CPUQuota?
    /// Relative share (`cpu.weight`, 1...10000, default 100).
    public var cpuWeight: CPUWeight?
    /// Run only when nothing else wants the CPU (`cpu.idle`).
    public var cpuIdle: Bool?

    // MARK: affinity

    /// CPUs the job may run on, e.g. "0-1,3" (`cpuset.cpus`).
    public var cpus: String?
    /// Memory nodes, e.g. "0" (`cpuset.mems`).
    public var memoryNodes: String?

    // MARK: io

    /// Per-device rate limits (`io.max`).
    public var io: [IOLimit] = []
    /// Relative IO share (`io.weight`, 1...10000, default 100).
    public var ioWeight: Int?

    // MARK: time and per process

    /// Total CPU time the job may use (Windows JOB_TIME), and what happens then.
    public var cpuTimeBudget: CPUTimeBudget?
    /// setrlimit limits applied to every process spawned through the job
    /// (Windows PROCESS_MEMORY, PROCESS_TIME): RLIMIT_AS, RLIMIT_CPU, …
    public var perProcess: [ResourceLimit] = []

    // MARK: raw files

    /// cgroup v2 interface files written as given, after every typed limit:
    /// for the files the fields above do not cover (`memory.swap.high`,
    /// `cpu.max.burst`, …), as the OCI `linux.resources.unified` map gives
    /// them. A name is `CONTROLLER.FILE` of a controller the job can enable
    /// (`cgroup.*` files belong to the library); the value is one line.
    public var unified: [String: String] = [:]

    /// No limit set.
    public init() {}

    /// True when no field is set.
    public var isEmpty: Bool { self == JobLimits() }
}

/// A CPU cap for `cpu.max`: `quota` microseconds every `period`.
public struct CPUQuota: Sendable, Equatable {
    /// Microseconds of CPU time per period; nil is "max" (no cap).
    public var quotaMicroseconds: UInt64?
    /// The period the quota is measured over, 1000...1000000 µs.
    public var periodMicroseconds: UInt64

    /// A quota per period, both in microseconds.
    public init(quotaMicroseconds: UInt64?, periodMicroseconds: UInt64 = 100_000) {
        self.quotaMicroseconds = quotaMicroseconds
        self.periodMicroseconds = periodMicroseconds
    }

    /// The largest quota cpu.max takes: 2^44 - 1 µs (the kernel's
    /// `max_cfs_runtime`).
    public static let maximumQuotaMicroseconds: UInt64 = (1 << 44) - 1

    /// A cap of `count` CPUs (1.5 is one and a half CPUs' worth of time).
    public static func cpus(_ count: Double, periodMicroseconds: UInt64 = 100_000) -> CPUQuota {
        // Out of range (or negative) saturates; `JobLimits` validation then
        // refuses it with the kernel's bounds.
        CPUQuota(
            quotaMicroseconds: UInt64(roundingExactly: count * Double(periodMicroseconds)) ?? .max,
            periodMicroseconds: periodMicroseconds)
    }

    /// A Windows-style rate: `percent` of the whole machine (all its CPUs).
    public static func percentOfMachine(
        _ percent: Double, cpuCount: Int = SystemInfo.onlineCPUCount, periodMicroseconds: UInt64 = 100_000
    ) -> CPUQuota {
        cpus(percent / 100 * Double(cpuCount), periodMicroseconds: periodMicroseconds)
    }

    /// The cap as a number of CPUs (nil: no cap).
    public var cpuCount: Double? { quotaMicroseconds.map { Double($0) / Double(periodMicroseconds) } }

    /// "150000 100000" or "max 100000".
    var fileValue: String { "\(quotaMicroseconds.map(String.init) ?? "max") \(periodMicroseconds)" }

    init?(fileValue: String) {
        let parts = fileValue.split(separator: " ")
        guard parts.count == 2, let period = UInt64(parts[1]) else { return nil }
        self.init(quotaMicroseconds: parts[0] == "max" ? nil : UInt64(parts[0]), periodMicroseconds: period)
    }
}

/// `cpu.weight`, 1...10000 (100 is the default share).
public struct CPUWeight: Sendable, Equatable {
    /// The weight, 1...10000.
    public var value: Int
    /// A `cpu.weight` value (checked when the limits are applied).
    public init(_ value: Int) { self.value = value }

    /// A Windows CPU rate weight, 1...9 (5 is the default): each step doubles
    /// or halves the share, so 5 → 100, 6 → 200, 4 → 50, 9 → 1600, 1 → 6.
    public static func windows(_ weight: Int) -> CPUWeight {
        CPUWeight(Int(roundingExactly: 100 * pow2(weight - 5)) ?? .max)
    }

    private static func pow2(_ exponent: Int) -> Double {
        exponent >= 0 ? Double(1 << exponent) : 1 / Double(1 << -exponent)
    }
}

/// One device's line of `io.max`. nil fields are "max".
public struct IOLimit: Sendable, Equatable {
    /// The device: a path such as /dev/sda (resolved to major:minor) or "8:0".
    public var device: String
    /// `rbps`: bytes read per second.
    public var readBytesPerSecond: UInt64?
    /// `wbps`: bytes written per second.
    public var writeBytesPerSecond: UInt64?
    /// `riops`: read operations per second.
    public var readOperationsPerSecond: UInt64?
    /// `wiops`: write operations per second.
    public var writeOperationsPerSecond: UInt64?

    /// A limit for `device`; nil rates are unlimited.
    public init(
        device: String, readBytesPerSecond: UInt64? = nil, writeBytesPerSecond: UInt64? = nil,
        readOperationsPerSecond: UInt64? = nil, writeOperationsPerSecond: UInt64? = nil
    ) {
        self.device = device
        self.readBytesPerSecond = readBytesPerSecond
        self.writeBytesPerSecond = writeBytesPerSecond
        self.readOperationsPerSecond = readOperationsPerSecond
        self.writeOperationsPerSecond = writeOperationsPerSecond
    }
}

/// The job's total CPU time allowance (Windows `JOB_OBJECT_LIMIT_JOB_TIME`).
public struct CPUTimeBudget: Sendable, Equatable {
    /// What happens when the budget is used up.
    public enum Action: String, Sendable {
        /// Kill every process in the job (Windows' default).
        case terminate
        /// Only deliver `.cpuTimeBudgetReached` (Windows `JOB_OBJECT_POST_AT_END_OF_JOB`).
        case notify
    }

    /// User + system time of the whole job, from its `cpu.stat`.
    public var limit: Duration
    /// What happens then.
    public var action: Action

    /// A budget of `limit` CPU time; by default the job is terminated when it is used up.
    public init(_ limit: Duration, action: Action = .terminate) {
        self.limit = limit
        self.action = action
    }
}
