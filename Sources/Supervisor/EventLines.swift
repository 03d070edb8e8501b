import Glibc
import JobObjects

/// Job events as lines: one JSON object per event (`--events json`, the
/// schema in docs/jobsup.md) or a short human sentence.
struct EventLines {
    enum Format: String, CaseIterable { case json, human }

    let job: String
    let format: Format
    let fd: Int32

    func write(_ event: JobEvent) {
        Diagnostics.write(fd, line(event) + "\n")
    }

    func line(_ event: JobEvent) -> String {
        var object = JSONObject()
        object.add("time", Self.timestamp())
        object.add("job", job)
        let human: String
        switch event {
        case .subscribed(let c):
            object.add("event", "subscribed")
            object.add("populated", c.populated)
            object.add("frozen", c.frozen)
            object.add("processes_started", c.processesStarted)
            object.add("processes_exited", c.processesExited)
            object.add("abnormal_exits", c.abnormalExits)
            object.add("memory_limit_reached", c.memoryLimitReached)
            object.add("out_of_memory_kills", c.outOfMemoryKills)
            object.add("memory_high_crossed", c.memoryHighCrossed)
            object.add("process_limit_reached", c.processLimitReached)
            object.add("cpu_time_budget_reached", c.cpuTimeBudgetReached)
            object.add("descendants_tracked", c.descendantsTracked)
            object.add("descendants_started", c.descendantsStarted)
            object.add("descendants_exited", c.descendantsExited)
            object.add("descendant_event_losses", c.descendantEventLosses)
            human = "watching (\(c.populated ? "processes running" : "empty")\(c.frozen ? ", frozen" : ""))"
        case .processStarted(let pid):
            object.add("event", "process_started")
            object.add("pid", pid)
            human = "process \(pid) started"
        case .processExited(let exit):
            object.add("event", "process_exited")
            Self.add(exit, to: &object)
            human = "process \(exit.pid) \(exit.status)"
        case .descendantStarted(let pid, let parent):
            object.add("event", "descendant_started")
            object.add("pid", pid)
            object.add("parent", parent)
            human = "process \(pid) forked by \(parent)"
        case .descendantExited(let exit):
            object.add("event", "descendant_exited")
            Self.add(exit, to: &object)
            human = "descendant \(exit.pid) \(exit.status)"
        case .descendantEventsLost:
            object.add("event", "descendant_events_lost")
            human = "the kernel dropped process events: descendant counts are a lower bound from here"
        case .abnormalExit(let exit):
            object.add("event", "abnormal_exit")
            Self.add(exit, to: &object)
            human = "process \(exit.pid) ended abnormally: \(exit.status)"
        case .activeProcessZero:
            object.add("event", "active_process_zero")
            human = "no process left in the job"
        case .memoryLimitReached(let count):
            object.add("event", "memory_limit_reached")
            object.add("count", count)
            human = "memory.max reached (\(count)×)"
        case .outOfMemoryKill(let count):
            object.add("event", "out_of_memory_kill")
            object.add("count", count)
            human = "OOM kill of \(count) process(es)"
        case .memoryHighCrossed(let count):
            object.add("event", "memory_high_crossed")
            object.add("count", count)
            human = "memory.high crossed (\(count)×)"
        case .processLimitReached(let count):
            object.add("event", "process_limit_reached")
            object.add("count", count)
            human = "pids.max refused \(count) fork(s)"
        case .cpuTimeBudgetReached(let used):
            object.add("event", "cpu_time_budget_reached")
            object.add("used_usec", used.microseconds)
            human = "CPU time budget used up (\(used.secondsText) s)"
        case .frozen:
            object.add("event", "frozen")
            human = "frozen"
        case .thawed:
            object.add("event", "thawed")
            human = "thawed"
        case .memoryThresholdExceeded(let current, let threshold):
            object.add("event", "memory_threshold_exceeded")
            object.add("current", current)
            object.add("threshold", threshold)
            human = "memory \(current) exceeds the threshold \(threshold)"
        case .cpuTimeThresholdExceeded(let used, let threshold):
            object.add("event", "cpu_time_threshold_exceeded")
            object.add("used_usec", used.microseconds)
            object.add("threshold_usec", threshold.microseconds)
            human = "CPU time \(used.secondsText) s exceeds the threshold \(threshold.secondsText) s"
        }
        return format == .json ? object.text : "\(Self.timestamp()) \(job): \(human)"
    }

    private static func add(_ exit: ProcessExit, to object: inout JSONObject) {
        object.add("pid", exit.pid)
        switch exit.status {
        case .exited(let code):
            object.add("exit_code", code)
            object.add("signal", nil as Int32?)
        case .signaled(let signal, _):
            object.add("exit_code", nil as Int32?)
            object.add("signal", signal)
        case .unknown:
            object.add("exit_code", nil as Int32?)
            object.add("signal", nil as Int32?)
        }
        object.add("status", exit.status.shellStatus)
    }

    /// RFC 3339 UTC with milliseconds: 2026-11-23T00:31:07.123Z.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return
            "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}
