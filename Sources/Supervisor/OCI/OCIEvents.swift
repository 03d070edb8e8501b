import Glibc
import JobObjects

/// `events [--stats] [--interval D] ID`: the job's statistics in runc's
/// `{"type":"stats","id":…,"data":{…}}` shape — once with `--stats`, else
/// every interval, with a `{"type":"oom","id":…}` line for each OOM kill in
/// the job as it happens, until the container stops.
struct OCIEvents {
    let lifecycle: OCILifecycle
    let interval: Duration

    init(lifecycle: OCILifecycle, interval text: String?) throws(OCIRuntimeError) {
        self.lifecycle = lifecycle
        guard let text else {
            interval = .seconds(5)
            return
        }
        guard let parsed = Self.duration(text), parsed > .zero, parsed <= .seconds(86_400) else {
            throw OCIRuntimeError("--interval \"\(text.prefix(40))\" is not a duration from 1ms to 24h, such as 500ms, 5s or 1m")
        }
        interval = parsed
    }

    /// One line of statistics.
    func printStats() throws(OCIRuntimeError) {
        let job = try lifecycle.openJob()
        print(try Self.statsLine(id: lifecycle.record.id, job: job))
    }

    /// Statistics every interval and OOM kills as they come, until init is
    /// gone (the container stopped) or the job is.
    func stream() throws(OCIRuntimeError) {
        let job = try lifecycle.openJob()
        let id = lifecycle.record.id
        let initProcess = lifecycle.record.initProcess
        let interval = self.interval
        // Subscribed before the first line goes out: an OOM kill after it
        // is never missed.
        let events = job.events
        Self.emit(try Self.statsLine(id: id, job: job))
        do {
            try OCIRuntime.wait {
                let ooms = Task {
                    for await event in events {
                        if case .outOfMemoryKill = event { Self.emit("{\"type\":\"oom\",\"id\":\(JSONObject.quoted(id))}") }
                    }
                }
                defer { ooms.cancel() }
                while true {
                    try? await Task.sleep(for: interval)
                    guard initProcess.isAlive else { break }
                    Self.emit(try Self.statsLine(id: id, job: job))
                }
            }
        } catch let error as OCIRuntimeError {
            throw error
        } catch {
            throw OCIRuntimeError("events \(id): \(error)")
        }
    }

    /// Lines go out whole and at once: the reader is usually a pipe.
    private static func emit(_ line: String) {
        Diagnostics.write(STDOUT_FILENO, line + "\n")
    }

    static func statsLine(id: String, job: JobObject) throws(OCIRuntimeError) -> String {
        let accounting: JobAccounting
        do {
            accounting = try job.accounting()
        } catch {
            throw OCIRuntimeError("events \(id): \(error.message)")
        }
        var event = JSONObject()
        event.add("type", "stats")
        event.add("id", id)
        event.addRaw("data", stats(accounting, limits: job.limits))
        return event.text
    }

    /// runc's `types.Stats` from the job's accounting and limits. Times are
    /// nanoseconds; an unlimited memory limit is 2^64-1, as runc gives it;
    /// `pids.current` counts tasks (threads), as the kernel's file does.
    static func stats(_ accounting: JobAccounting, limits: JobLimits) -> String {
        func nanoseconds(_ duration: Duration) -> UInt64 {
            let (seconds, attoseconds) = duration.components
            return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        }
        var usage = JSONObject()
        usage.add("total", nanoseconds(accounting.totalTime))
        usage.add("kernel", nanoseconds(accounting.systemTime))
        usage.add("user", nanoseconds(accounting.userTime))
        var throttling = JSONObject()
        if let periods = accounting.throttledPeriods { throttling.add("throttledPeriods", periods) }
        if let time = accounting.throttledTime { throttling.add("throttledTime", nanoseconds(time)) }
        var cpu = JSONObject()
        cpu.addRaw("usage", usage.text)
        cpu.addRaw("throttling", throttling.text)

        var memoryUsage = JSONObject()
        memoryUsage.add("limit", limits.memoryMax ?? ByteCount.unlimited)
        if let current = accounting.memoryCurrent { memoryUsage.add("usage", current) }
        if let peak = accounting.memoryPeak { memoryUsage.add("max", peak) }
        memoryUsage.add("failcnt", accounting.memoryLimitReached ?? 0)
        var swap = JSONObject()
        swap.add("limit", limits.swapMax ?? ByteCount.unlimited)
        if let current = accounting.swapCurrent { swap.add("usage", current) }
        swap.add("failcnt", 0)
        var memory = JSONObject()
        memory.addRaw("usage", memoryUsage.text)
        memory.addRaw("swap", swap.text)
        var raw = JSONObject()
        if let faults = accounting.pageFaults { raw.add("pgfault", faults) }
        if let major = accounting.majorPageFaults { raw.add("pgmajfault", major) }
        if let kills = accounting.outOfMemoryKills { raw.add("oom_kill", kills) }
        memory.addRaw("raw", raw.text)

        var pids = JSONObject()
        pids.add("current", accounting.activeThreads)
        if let limit = limits.maxProcesses { pids.add("limit", limit) }

        func entries(_ read: UInt64?, _ write: UInt64?) -> String {
            guard let read, let write else { return "[]" }
            return JSONObject.array([
                "{\"op\":\"Read\",\"value\":\(read)}", "{\"op\":\"Write\",\"value\":\(write)}",
                "{\"op\":\"Total\",\"value\":\(read &+ write)}",
            ])
        }
        var blkio = JSONObject()
        blkio.addRaw("ioServiceBytesRecursive", entries(accounting.ioReadBytes, accounting.ioWriteBytes))
        blkio.addRaw("ioServicedRecursive", entries(accounting.ioReadOperations, accounting.ioWriteOperations))

        var data = JSONObject()
        data.addRaw("cpu", cpu.text)
        data.addRaw("cpuset", "{}")
        data.addRaw("memory", memory.text)
        data.addRaw("pids", pids.text)
        data.addRaw("blkio", blkio.text)
        data.addRaw("hugetlb", "{}")
        data.addRaw("intel_rdt", "{}")
        data.addRaw("network_interfaces", "null")
        return data.text
    }

    /// A Go-style duration of one unit: `500ms`, `5s`, `2m`, `1h`.
    static func duration(_ text: String) -> Duration? {
        for (unit, scale) in [("ms", Duration.milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600))]
        where text.hasSuffix(unit) {
            guard let count = Int64(text.dropLast(unit.count)), count >= 0, count <= 86_400_000 else { return nil }
            return scale * count
        }
        return nil
    }
}
