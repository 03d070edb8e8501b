import ArgumentParser
import JobObjects

struct LimitsCommand: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "limits",
            abstract: "Print a job's limits, or change them while it runs.",
            discussion: """
                Without limit flags, prints the limits in force, read back from the kernel \
                (a limit whose controller is not enabled for the job is not shown). With \
                flags, sets those on the live job; processes already running are held to the \
                new values at once, and the rest stay as they are. --rlimit and --cpu-time \
                belong to the jobsup that runs the job and cannot be changed here.

                Examples:
                  jobsup limits build
                  jobsup limits build --memory-max 4G --memory-high 3G
                  jobsup limits build --cpus 0.5 --format json

                """ + "\n" + FlagHelp.text([FlagSection(title: "Limits", flags: RunFlags.limits)]))
    }

    @OptionGroup var target: JobTarget

    @Option(help: ArgumentHelp("Output of the limits: human or json.", valueName: "format"))
    var format: OutputFormat = .human

    /// The limit options (declared in `RunFlags.limits`), read by `flags()`.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Limits to set (listed above).", valueName: "limit options"))
    var limitArguments: [String] = []

    /// The limit options given.
    func flags() throws(ValidationError) -> LimitFlags {
        var request = RunRequest()
        let rest = try FlagParser.parse(limitArguments[...], RunFlags.limits, into: &request)
        if let extra = rest.first { throw ValidationError("unexpected argument \(quoted(extra)): give the job's name, then limit options") }
        return request.limits
    }

    func validate() throws {
        let flags = try flags()
        if !flags.rlimit.isEmpty || flags.cpuTime != nil {
            throw ValidationError("--rlimit and --cpu-time are kept by the jobsup that runs the job; give them to jobsup run")
        }
        _ = try flags.limits()
    }

    func run() async throws {
        let flags = try flags()
        let limits = try flags.limits()
        var target = self.target
        if !flags.isEmpty && RunRequest.needsControllers(limits) {
            // Enabling a controller for the jobs needs the cgroups above
            // them free of processes, this one included — when the job is
            // below this process's cgroup. A job in a systemd driver's scope
            // is not: its own jobsup owns that scope's leaf.
            await management { () async throws(JobObjectError) in
                let parent = target.cgroupParent
                if try CgroupDriverChoice.select(parent: parent.path, forced: parent.driver).driver == .cgroupfs,
                    let entered = try RunRequest.prepareParent(parent.path, driver: parent.driver, leaf: true)
                {
                    target.cgroupParent.value = entered.string
                }
            }
        }
        let job = target.open()
        await management { () async throws(JobObjectError) in
            if !flags.isEmpty { try job.setLimits(limits) }
            Diagnostics.output(LimitsReport(job.limits).text(format))
        }
    }
}

/// A job's limits as `name: value` lines or one JSON object (docs/jobsup.md).
struct LimitsReport {
    let limits: JobLimits

    init(_ limits: JobLimits) { self.limits = limits }

    func text(_ format: OutputFormat) -> String {
        let rows = self.rows
        if format == .json {
            var o = JSONObject()
            for (key, _, json) in rows { o.addRaw(key, json) }
            return o.text
        }
        let shown = rows.filter { $0.2 != "null" }
        if shown.isEmpty { return "no limits (no controller is enabled for the job)" }
        return shown.map { "\($0.1): \(Self.plain($0.2))" }.joined(separator: "\n")
    }

    private static func plain(_ json: String) -> String {
        json.hasPrefix("\"") ? String(json.dropFirst().dropLast()) : json
    }

    /// (json key, cgroup file, JSON value).
    private var rows: [(String, String, String)] {
        func bytes(_ v: UInt64?) -> String {
            guard let v else { return "null" }
            return v == ByteCount.unlimited ? "\"max\"" : String(v)
        }
        func flag(_ v: Bool?) -> String { v.map { $0 ? "true" : "false" } ?? "null" }
        func string(_ v: String?) -> String { v.map(JSONObject.quoted) ?? "null" }
        let l = limits
        let cpu: String = l.cpu.map { q in q.cpuCount.map { String($0) } ?? "\"max\"" } ?? "null"
        let io = l.io.map { limit -> String in
            var o = JSONObject()
            o.add("device", limit.device)
            o.add("rbps", limit.readBytesPerSecond)
            o.add("wbps", limit.writeBytesPerSecond)
            o.add("riops", limit.readOperationsPerSecond)
            o.add("wiops", limit.writeOperationsPerSecond)
            return o.text
        }
        return [
            ("memory_max", "memory.max", bytes(l.memoryMax)),
            ("memory_high", "memory.high", bytes(l.memoryHigh)),
            ("memory_low", "memory.low", bytes(l.memoryLow)),
            ("memory_min", "memory.min", bytes(l.memoryMin)),
            ("swap_max", "memory.swap.max", bytes(l.swapMax)),
            ("oom_kill_group", "memory.oom.group", flag(l.killJobOnOutOfMemory)),
            ("pids_max", "pids.max", l.maxProcesses.map { $0 == Int.max ? "\"max\"" : String($0) } ?? "null"),
            ("cpus", "cpu.max (CPUs)", cpu),
            ("cpu_period_usec", "cpu.max period (µs)", l.cpu.map { String($0.periodMicroseconds) } ?? "null"),
            ("cpu_weight", "cpu.weight", l.cpuWeight.map { String($0.value) } ?? "null"),
            ("cpu_idle", "cpu.idle", flag(l.cpuIdle)),
            ("cpuset", "cpuset.cpus", string(l.cpus)),
            ("cpuset_mems", "cpuset.mems", string(l.memoryNodes)),
            ("io_weight", "io.weight", l.ioWeight.map(String.init) ?? "null"),
            ("io_max", "io.max", l.io.isEmpty ? (l.ioWeight == nil ? "null" : "[]") : JSONObject.array(io)),
        ]
    }
}
