import Glibc
import JobObjects

/// Creating and closing a job with no process in it.
public enum JobLifecycle {
    /// `JobObject.create` + `close()`: mkdir, open the directory and its
    /// files, register with the owner-death watchdog; then kill (a no-op
    /// write), see `populated 0`, rmdir, unregister.
    public static func jobObjects() async throws -> UInt64 {
        let start = MonotonicClock.now()
        let job = try JobObject.create(name: Workloads.uniqueJobName("bench-empty"))
        try await job.close()
        return MonotonicClock.now() - start
    }

    /// The floor: mkdir + rmdir of a cgroup under the same parent.
    public static func rawMkdirRmdir(parent: String) throws -> UInt64 {
        let path = parent + "/" + Workloads.uniqueJobName("bench-raw")
        let start = MonotonicClock.now()
        guard mkdir(path, 0o755) == 0 else { throw BenchError("mkdir \(path): errno \(errno)") }
        guard rmdir(path) == 0 else { throw BenchError("rmdir \(path): errno \(errno)") }
        return MonotonicClock.now() - start
    }
}

extension JobLifecycle {
    /// Limits every host with the controllers can apply: memory and process count.
    public static var sampleLimits: JobLimits {
        var limits = JobLimits()
        limits.memoryMax = 256 << 20
        limits.maxProcesses = 64
        return limits
    }

    /// `JobObject.create(limits:)` + `close()`; `Skip` where the controllers
    /// are missing (the library's own error says which and why).
    public static func jobObjectsWithLimits() async throws -> UInt64 {
        let start = MonotonicClock.now()
        let job: JobObject
        do {
            job = try JobObject.create(name: Workloads.uniqueJobName("bench-limits"), limits: sampleLimits)
        } catch  where error.code == .controllerUnavailable {
            throw Skip(error.message)
        }
        try await job.close()
        return MonotonicClock.now() - start
    }

    /// Whether jobs under the default parent can have limits, or why not.
    public static func limitsUnavailableReason() -> String? {
        missingControllersReason(["memory", "pids"])
    }

    /// Why jobs under the default parent cannot use `controllers`, or nil.
    /// A hybrid host keeps them on cgroup v1, so its cgroup2 offers none.
    static func missingControllersReason(_ controllers: [String]) -> String? {
        guard let parent = try? JobParent.resolve() else { return "no job parent could be resolved" }
        let available = parent.availableControllers()
        let missing = controllers.filter { !available.contains($0) }
        guard !missing.isEmpty else { return nil }
        let offered = available.isEmpty ? "none" : available.sorted().joined(separator: " ")
        return "needs the \(missing.joined(separator: ", ")) controller(s), which \(parent.path) does not offer "
            + "(its cgroup.controllers: \(offered); a hybrid host keeps them on cgroup v1); "
            + "run where cgroup v2 has them, e.g. under scripts/vm-run"
    }
}
