import ArgumentParser
import JobObjects
import SystemPackage

/// Every option of `jobsup run`, each declared once: the parser, the help
/// and the per-value checks all come from here (`CommandFlag`). The limit
/// options are also `jobsup limits`'.
enum RunFlags {
    static let sections = [
        FlagSection(title: "Options", flags: job),
        FlagSection(title: "Signals and status", flags: signals),
        FlagSection(title: "Limits", flags: limits),
    ]

    static let all = job + signals + limits

    /// `jobsup run`'s options: reads them into a request, with the command after them.
    static func parse(_ arguments: ArraySlice<String>) throws(ValidationError) -> RunRequest {
        var request = RunRequest()
        request.argv = try FlagParser.parse(arguments, all, into: &request)
        return request
    }

    static let job: [CommandFlag] = [
        .option("--name", "name", help: "Name of the job (default: generated). One path component.") { $0.name = $1 },
        .option(
            "--cgroup-parent", "path",
            help: "Cgroup under which the job is created (default: $JOBOBJECTS_CGROUP_PARENT, else 'jobobjects' under jobsup's own cgroup)."
        ) {
            $0.cgroupParent = FilePath($1)
        },
        .option(
            "--cgroup-driver", "driver",
            help:
                "cgroupfs or systemd (default: $JOBOBJECTS_CGROUP_DRIVER, else systemd where it manages the machine and has not delegated jobsup's cgroup)."
        ) { request, value throws(ValidationError) in
            do throws(JobObjectError) { request.cgroupDriver = try CgroupDriver(parsing: value) } catch {
                throw ValidationError(error.message)
            }
        },
        .flag(
            "--require-cgroup",
            help: "Refuse to run where no cgroup can be made, rather than hold the job as a child subreaper only."
        ) { $0.requireCgroup = true },
        .option("-f", "file", help: "Read the job from a payload spec file (YAML or JSON).") { $0.file = $1 },
        .option(
            "--grace", "duration",
            help: "How long processes left after COMMAND exits get between SIGTERM and SIGKILL: 500ms, 5s, 1m (default 5s)."
        ) { request, value throws(ValidationError) in
            guard let grace = DurationArgument(argument: value) else {
                throw ValidationError("invalid --grace \(quoted(value)): give a duration such as 500ms, 5s or 1m")
            }
            request.grace = grace
        },
        .flag("--signal-job", help: "Forward signals to every process in the job, not only to COMMAND.") { $0.signalJob = true },
        .option("--events", "format", help: "Stream the job's events as lines on stderr: json or human.") {
            request, value throws(ValidationError) in
            guard let format = EventLines.Format(rawValue: value) else {
                throw ValidationError("invalid --events \(quoted(value)): give json or human")
            }
            request.events = format
        },
        .option(
            "--events-file", "path",
            help: "Write the events to this file instead of stderr (implies --events json unless --events is given)."
        ) {
            $0.eventsFile = $1
        },
        .flag("--stats", help: "Print the job's accounting on stderr when it ends.") { $0.stats = true },
        .option("--stats-format", "format", help: "Format of --stats: human or json.") { request, value throws(ValidationError) in
            guard let format = OutputFormat(rawValue: value) else {
                throw ValidationError("invalid --stats-format \(quoted(value)): give human or json")
            }
            request.statsFormat = format
        },
    ]

    static let signals: [CommandFlag] = [
        .repeated(
            "--rewrite-signal", "from:to",
            help:
                "Pass signal FROM on as TO (TO 0 drops it). The rewritten signal is handled as if jobsup had received it: TSTP:0 keeps a job from being stopped, TERM:QUIT passes SIGQUIT on."
        ) {
            $0.signals.rewrite.append($1)
        },
        .repeated("--success-exit", "status", help: "Exit 0 when COMMAND exits with this status (0-255, 128+N for signal N).") {
            $0.signals.successExit.append($1)
        },
        .option(
            "--parent-death-signal", "signal",
            help:
                "Have the kernel send this signal to jobsup when its parent dies; it is passed on like any other: e.g. TERM (not KILL or STOP, which jobsup cannot catch)."
        ) {
            $0.signals.parentDeathSignal = $1
        },
        .flag(
            "--reset-signals",
            help: "Start COMMAND with no signal blocked or ignored, rather than with what jobsup's caller blocked and ignored."
        ) {
            $0.signals.resetSignals = true
        },
    ]

    /// The limits, for `jobsup run` and `jobsup limits` (which reads them
    /// into a request too); `LimitFlags` checks the values together.
    static let limits: [CommandFlag] = [
        .option(
            "--memory-max", "size",
            help: "Hard memory limit (memory.max): 512M, 1.5G, bytes, or max. Past it the kernel reclaims, then OOM-kills."
        ) { $0.limits.memoryMax = $1 },
        .option("--memory-high", "size", help: "Memory throttle limit (memory.high): reclaim pressure, no OOM kill.") {
            $0.limits.memoryHigh = $1
        },
        .option("--memory-low", "size", help: "Best-effort memory protection (memory.low).") { $0.limits.memoryLow = $1 },
        .option("--memory-min", "size", help: "Hard memory protection (memory.min).") { $0.limits.memoryMin = $1 },
        .option("--swap-max", "size", help: "Swap limit (memory.swap.max).") { $0.limits.swapMax = $1 },
        .flag("--oom-kill-group", help: "On an OOM kill, kill the whole job rather than one process (memory.oom.group).") {
            $0.limits.oomKillGroup = true
        },
        .option("--pids-max", "n", help: "Most tasks (processes and threads) in the job at once (pids.max): a number ≥ 1, or max.") {
            $0.limits.pidsMax = $1
        },
        .option("--cpus", "n", help: "CPU cap as a number of CPUs (cpu.max): 1.5 is one and a half CPUs' worth of time.") {
            $0.limits.cpus = $1
        },
        .option(
            "--cpu-percent", "percent",
            help: "CPU cap as a percentage of the whole machine, as Windows rates it (cpu.max): 25 on an 8-CPU machine is 2 CPUs."
        ) { $0.limits.cpuPercent = $1 },
        .option(
            "--cpu-period", "duration",
            help: "The cpu.max period for --cpus/--cpu-percent: 1ms to 1s (default 100ms); a bare number is microseconds."
        ) { $0.limits.cpuPeriod = $1 },
        .option("--cpu-weight", "weight", help: "Relative CPU share (cpu.weight): 1 to 10000, default 100.") { $0.limits.cpuWeight = $1 },
        .option(
            "--cpu-windows-weight", "weight",
            help: "Relative CPU share as a Windows weight 1 to 9 (5 is the default; each step doubles or halves)."
        ) { $0.limits.cpuWindowsWeight = $1 },
        .flag("--cpu-idle", help: "Run only when nothing else wants the CPU (cpu.idle).") { $0.limits.cpuIdle = true },
        .option("--cpuset", "list", help: "CPUs the job may run on (cpuset.cpus): 0-1,3.") { $0.limits.cpuset = $1 },
        .option("--cpuset-mems", "list", help: "Memory nodes the job may use (cpuset.mems): 0.") { $0.limits.cpusetMems = $1 },
        .repeated(
            "--io-max", "spec",
            help:
                "Per-device IO rate limit (io.max): DEVICE:KEY=VALUE[,KEY=VALUE…], DEVICE a block device path or MAJOR:MINOR, KEY rbps/wbps (bytes/s: 10M) or riops/wiops (operations/s), VALUE or max. Example: /dev/sda:wbps=10M,riops=1000."
        ) {
            $0.limits.ioMax.append($1)
        },
        .option("--io-weight", "weight", help: "Relative IO share (io.weight): 1 to 10000, default 100.") { $0.limits.ioWeight = $1 },
        .repeated(
            "--rlimit", "name=value",
            help:
                "A setrlimit limit for every process the job starts: NAME=SOFT[:HARD], NAME one of \(ResourceLimitName.allNames); sizes take units (as=1G), cpu takes seconds, unlimited for none. Example: nofile=1024:4096."
        ) {
            $0.limits.rlimit.append($1)
        },
        .option(
            "--cpu-time", "duration",
            help: "The job's total CPU time budget (user+system of every process), as Windows JOB_TIME: 30s, 1.5m, 500ms."
        ) { $0.limits.cpuTime = $1 },
        .option(
            "--cpu-time-action", "action",
            help: "What happens when --cpu-time is used up: terminate (kill the job, the default) or notify (only an event)."
        ) { $0.limits.cpuTimeAction = $1 },
    ]
}
