import ArgumentParser
import JobObjects

/// A job's accounting, as a human table or one JSON object (the schema in
/// docs/jobsup.md): `jobsup run --stats` at the end, `jobsup stats NAME` any time.
struct StatsReport {
    var job: String
    /// Init's status, for `run --stats`.
    var initStatus: ExitStatus?
    var accounting: JobAccounting?
    /// Orphans jobsup reaped as subreaper, for `run --stats`.
    var orphansReaped: Int?

    func text(_ format: OutputFormat) -> String {
        format == .json ? json : human
    }

    var human: String {
        var lines = ["job \(job)" + (initStatus.map { ": init \($0)" } ?? "")]
        func row(_ label: String, _ value: String?) {
            guard let value else { return }
            lines.append("  " + label + String(repeating: " ", count: max(1, 22 - label.count)) + value)
        }
        if let a = accounting {
            row("cpu user:", a.userTime.secondsText + " s")
            row("cpu system:", a.systemTime.secondsText + " s")
            row("cpu throttled:", a.throttledTime.map { $0.secondsText + " s in \(a.throttledPeriods ?? 0) periods" })
            row("memory now:", a.memoryCurrent.map(Self.size))
            row("memory peak:", a.memoryPeak.map(Self.size))
            row("swap now:", a.swapCurrent.map(Self.size))
            row("page faults:", a.pageFaults.map { "\($0) (\(a.majorPageFaults ?? 0) major)" })
            row("io read:", a.ioReadBytes.map { Self.size($0) + " in \(a.ioReadOperations ?? 0) ops" })
            row("io written:", a.ioWriteBytes.map { Self.size($0) + " in \(a.ioWriteOperations ?? 0) ops" })
            row("processes now:", "\(a.activeProcesses) (\(a.activeThreads) threads)")
            row("processes peak:", a.peakProcesses.map(String.init))
            // What jobsup itself started in the job (init), not what init forked.
            if a.processesStarted > 0 {
                let abnormal = a.exits.filter { $0.status.isAbnormal }.count
                row("spawned by jobsup:", "\(a.processesStarted) (\(a.exits.count) exited, \(abnormal) abnormally)")
            }
            row("OOM kills:", a.outOfMemoryKills.map(String.init))
            row("memory.max hits:", a.memoryLimitReached.map(String.init))
            row("memory.high hits:", a.memoryHighCrossed.map(String.init))
            row("pids.max refusals:", a.processLimitReached.map(String.init))
        }
        row("orphans reaped:", orphansReaped.map(String.init))
        return lines.joined(separator: "\n")
    }

    var json: String {
        var o = JSONObject()
        o.add("job", job)
        if let status = initStatus {
            o.add("exit_status", status.shellStatus)
            if case .signaled(let signal, _) = status { o.add("signal", signal) } else { o.add("signal", nil as Int32?) }
        }
        if let orphansReaped { o.add("orphans_reaped", orphansReaped) }
        let a = accounting
        o.add("cpu_user_usec", a?.userTime.microseconds)
        o.add("cpu_system_usec", a?.systemTime.microseconds)
        o.add("cpu_throttled_usec", a?.throttledTime?.microseconds)
        o.add("cpu_throttled_periods", a?.throttledPeriods)
        o.add("memory_current_bytes", a?.memoryCurrent)
        o.add("memory_peak_bytes", a?.memoryPeak)
        o.add("swap_current_bytes", a?.swapCurrent)
        o.add("page_faults", a?.pageFaults)
        o.add("major_page_faults", a?.majorPageFaults)
        o.add("io_read_bytes", a?.ioReadBytes)
        o.add("io_write_bytes", a?.ioWriteBytes)
        o.add("io_read_operations", a?.ioReadOperations)
        o.add("io_write_operations", a?.ioWriteOperations)
        o.add("active_processes", a?.activeProcesses)
        o.add("active_threads", a?.activeThreads)
        o.add("peak_processes", a?.peakProcesses)
        o.add("processes_started", a?.processesStarted)
        o.add("processes_exited", a?.exits.count)
        o.add("abnormal_exits", a.map { $0.exits.filter { $0.status.isAbnormal }.count })
        o.add("out_of_memory_kills", a?.outOfMemoryKills)
        o.add("memory_limit_reached", a?.memoryLimitReached)
        o.add("memory_high_crossed", a?.memoryHighCrossed)
        o.add("process_limit_reached", a?.processLimitReached)
        return o.text
    }

    /// 1536 → "1.5K", in powers of 1024 as the flags take them.
    static func size(_ bytes: UInt64) -> String {
        if bytes == ByteCount.unlimited { return "max" }
        let units = ["", "K", "M", "G", "T"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes)" }
        let tenths = (value * 10).rounded() / 10
        let text = tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
        return text + units[unit]
    }
}

/// The output formats of jobsup's reports.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case human, json
}
