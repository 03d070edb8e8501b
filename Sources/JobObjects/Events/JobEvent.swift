import Glibc

/// What happens in a job: the Linux counterpart of the messages a Windows
/// job object posts to its completion port.
public enum JobEvent: Sendable, Equatable {
    /// First event of every subscription: the job's state and counters so
    /// far, so a consumer that starts late still sees what happened.
    case subscribed(JobEventCounters)
    /// A process was spawned into (or assigned to) the job through this handle.
    case processStarted(pid: pid_t)
    /// A process started through this handle exited.
    case processExited(ProcessExit)
    /// A descendant (forked inside the job, not spawned by this handle)
    /// started or exited. Reported where the host allows the kernel's process
    /// events connector (root); see `JobEventCounters.descendantsTracked`.
    case descendantStarted(pid: pid_t, parent: pid_t)
    case descendantExited(ProcessExit)
    /// The kernel dropped process events (the connector's socket filled
    /// while the machine forked faster than this process read): from now
    /// on the descendant events and counts are a lower bound. Reported
    /// once per handle; `JobEventCounters.descendantEventLosses` counts.
    case descendantEventsLost
    /// It exited abnormally: killed by a signal, or a non-zero exit code.
    case abnormalExit(ProcessExit)
    /// No process is left in the job (`cgroup.events` populated 0; Windows ACTIVE_PROCESS_ZERO).
    case activeProcessZero
    /// The job reached `memory.max` (`memory.events` max) this many more times.
    case memoryLimitReached(count: Int)
    /// The kernel OOM-killed this many more processes in the job (`memory.events` oom_kill).
    case outOfMemoryKill(count: Int)
    /// The job went over `memory.high` this many more times (`memory.events` high).
    case memoryHighCrossed(count: Int)
    /// A fork was refused by `pids.max` this many more times (`pids.events` max).
    case processLimitReached(count: Int)
    /// The job used up its CPU time budget (Windows END_OF_JOB_TIME).
    case cpuTimeBudgetReached(used: Duration)
    /// The job is fully frozen / thawed (`cgroup.events` frozen).
    case frozen
    case thawed
    /// A notification limit was passed (re-armed by `setNotificationLimits`).
    case memoryThresholdExceeded(current: UInt64, threshold: UInt64)
    case cpuTimeThresholdExceeded(used: Duration, threshold: Duration)
}

/// The counters behind the events, as of one moment.
public struct JobEventCounters: Sendable, Equatable {
    /// Some process is in the job.
    public var populated = false
    /// The job is frozen.
    public var frozen = false
    /// Processes spawned into or assigned to the job through this handle.
    public var processesStarted = 0
    /// Of those, how many have exited.
    public var processesExited = 0
    /// Exits other than code 0.
    public var abnormalExits = 0
    /// Times `memory.max` was hit (`memory.events` max).
    public var memoryLimitReached = 0
    /// Processes the OOM killer ended (`memory.events` oom_kill).
    public var outOfMemoryKills = 0
    /// Times `memory.high` was crossed (`memory.events` high).
    public var memoryHighCrossed = 0
    /// Forks refused by `pids.max` (`pids.events` max).
    public var processLimitReached = 0
    /// The CPU-time budget is used up.
    public var cpuTimeBudgetReached = false
    /// Whether descendants are tracked (the process events connector is open).
    public var descendantsTracked = false
    /// Processes forked inside the job, when descendants are tracked.
    public var descendantsStarted = 0
    /// Of those, how many have exited.
    public var descendantsExited = 0
    /// Times descendant events were lost (see `JobEvent.descendantEventsLost`).
    public var descendantEventLosses = 0
    /// All zero.
    public init() {}
}

/// Soft thresholds that only notify (Windows notification limits). Each
/// fires once; set them again to re-arm.
public struct NotificationLimits: Sendable, Equatable {
    /// Notify when `memory.current` exceeds this many bytes.
    public var memory: UInt64?
    /// Notify when the job's total CPU time exceeds this.
    public var cpuTime: Duration?
    /// Thresholds as given; nil leaves one unset.
    public init(memory: UInt64? = nil, cpuTime: Duration? = nil) {
        self.memory = memory
        self.cpuTime = cpuTime
    }
}
