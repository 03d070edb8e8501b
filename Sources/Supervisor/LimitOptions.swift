import ArgumentParser
import Glibc
import JobObjects

/// Every job limit as a command-line flag with human units, shared by
/// `jobsup run` and `jobsup limits`; `LimitFlags` holds and checks the values.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("memory-max"), help: ArgumentHelp("Hard memory limit (memory.max): 512M, 1.5G, bytes, or max. Past it the kernel reclaims, then OOM-kills.", valueName: "size"))
    var memoryMax: String?

    @Option(name: .customLong("memory-high"), help: ArgumentHelp("Memory throttle limit (memory.high): reclaim pressure, no OOM kill.", valueName: "size"))
    var memoryHigh: String?

    @Option(name: .customLong("memory-low"), help: ArgumentHelp("Best-effort memory protection (memory.low).", valueName: "size"))
    var memoryLow: String?

    @Option(name: .customLong("memory-min"), help: ArgumentHelp("Hard memory protection (memory.min).", valueName: "size"))
    var memoryMin: String?

    @Option(name: .customLong("swap-max"), help: ArgumentHelp("Swap limit (memory.swap.max).", valueName: "size"))
    var swapMax: String?

    @Flag(name: .customLong("oom-kill-group"), help: "On an OOM kill, kill the whole job rather than one process (memory.oom.group).")
    var oomKillGroup = false

    @Option(name: .customLong("pids-max"), help: ArgumentHelp("Most tasks (processes and threads) in the job at once (pids.max): a number ≥ 1, or max.", valueName: "n"))
    var pidsMax: String?

    @Option(name: .customLong("cpus"), help: ArgumentHelp("CPU cap as a number of CPUs (cpu.max): 1.5 is one and a half CPUs' worth of time.", valueName: "n"))
    var cpus: String?

    @Option(name: .customLong("cpu-percent"), help: ArgumentHelp("CPU cap as a percentage of the whole machine, as Windows rates it (cpu.max): 25 on an 8-CPU machine is 2 CPUs.", valueName: "percent"))
    var cpuPercent: String?

    @Option(name: .customLong("cpu-period"), help: ArgumentHelp("The cpu.max period for --cpus/--cpu-percent: 1ms to 1s (default 100ms); a bare number is microseconds.", valueName: "duration"))
    var cpuPeriod: String?

    @Option(name: .customLong("cpu-weight"), help: ArgumentHelp("Relative CPU share (cpu.weight): 1 to 10000, default 100.", valueName: "weight"))
    var cpuWeight: String?

    @Option(name: .customLong("cpu-windows-weight"), help: ArgumentHelp("Relative CPU share as a Windows weight 1 to 9 (5 is the default; each step doubles or halves).", valueName: "weight"))
    var cpuWindowsWeight: String?

    @Flag(name: .customLong("cpu-idle"), help: "Run only when nothing else wants the CPU (cpu.idle).")
    var cpuIdle = false

    @Option(name: .customLong("cpuset"), help: ArgumentHelp("CPUs the job may run on (cpuset.cpus): 0-1,3.", valueName: "list"))
    var cpuset: String?

    @Option(name: .customLong("cpuset-mems"), help: ArgumentHelp("Memory nodes the job may use (cpuset.mems): 0.", valueName: "list"))
    var cpusetMems: String?

    @Option(name: .customLong("io-max"), help: ArgumentHelp("Per-device IO rate limit (io.max), repeatable: DEVICE:KEY=VALUE[,KEY=VALUE…], DEVICE a block device path or MAJOR:MINOR, KEY rbps/wbps (bytes/s: 10M) or riops/wiops (operations/s), VALUE or max. Example: /dev/sda:wbps=10M,riops=1000.", valueName: "spec"))
    var ioMax: [String] = []

    @Option(name: .customLong("io-weight"), help: ArgumentHelp("Relative IO share (io.weight): 1 to 10000, default 100.", valueName: "weight"))
    var ioWeight: String?

    @Option(name: .customLong("rlimit"), help: ArgumentHelp("A setrlimit limit for every process the job starts, repeatable: NAME=SOFT[:HARD], NAME one of \(ResourceLimitName.allNames); sizes take units (as=1G), cpu takes seconds, unlimited for none. Example: nofile=1024:4096.", valueName: "name=value"))
    var rlimit: [String] = []

    @Option(name: .customLong("cpu-time"), help: ArgumentHelp("The job's total CPU time budget (user+system of every process), as Windows JOB_TIME: 30s, 1.5m, 500ms.", valueName: "duration"))
    var cpuTime: String?

    @Option(name: .customLong("cpu-time-action"), help: ArgumentHelp("What happens when --cpu-time is used up: terminate (kill the job, the default) or notify (only an event).", valueName: "action"))
    var cpuTimeAction: String?

    /// The flags as given.
    var flags: LimitFlags {
        var flags = LimitFlags()
        flags.memoryMax = memoryMax
        flags.memoryHigh = memoryHigh
        flags.memoryLow = memoryLow
        flags.memoryMin = memoryMin
        flags.swapMax = swapMax
        flags.oomKillGroup = oomKillGroup
        flags.pidsMax = pidsMax
        flags.cpus = cpus
        flags.cpuPercent = cpuPercent
        flags.cpuPeriod = cpuPeriod
        flags.cpuWeight = cpuWeight
        flags.cpuWindowsWeight = cpuWindowsWeight
        flags.cpuIdle = cpuIdle
        flags.cpuset = cpuset
        flags.cpusetMems = cpusetMems
        flags.ioMax = ioMax
        flags.ioWeight = ioWeight
        flags.rlimit = rlimit
        flags.cpuTime = cpuTime
        flags.cpuTimeAction = cpuTimeAction
        return flags
    }

    var isEmpty: Bool { flags.isEmpty }

    func validate() throws {
        _ = try flags.limits()
    }

    /// The limits the flags give, checked.
    func limits() throws(ValidationError) -> JobLimits { try flags.limits() }
}
