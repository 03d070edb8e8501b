/// How a job's processes are asked to end before they are made to: a
/// signal to every member, a grace period to leave, then `cgroup.kill` for
/// whatever is left — what `docker stop`, systemd's `KillMode=` with
/// `TimeoutStopSec=` and Kubernetes' `terminationGracePeriodSeconds` do.
///
/// ```swift
/// let outcome = try await job.terminate(.init(signal: .terminate, grace: .seconds(10)))
/// if case .killedAfterGrace(let asked) = outcome { print("\(asked) process(es) ignored SIGTERM") }
/// ```
public struct GracefulTermination: Sendable, Hashable {
    /// Sent to every member first.
    public var signal: Signal
    /// How long the members have to leave after `signal`; zero kills at once.
    public var grace: Duration

    /// `signal`, then `grace` for the job to empty before the kill.
    public init(signal: Signal = .terminate, grace: Duration = .seconds(5)) {
        self.signal = signal
        self.grace = grace
    }

    /// SIGTERM, then 5 s.
    public static let `default` = GracefulTermination()
    /// No signal and no wait: `cgroup.kill` at once.
    public static let immediate = GracefulTermination(signal: .kill, grace: .zero)
}

/// What `JobObject.terminate(_:exitCode:)` had to do.
public enum TerminationOutcome: Sendable, Hashable {
    /// The job was already empty.
    case wasEmpty
    /// This many processes got the signal, and all left within the grace period.
    case leftWithinGrace(signalled: Int)
    /// This many got the signal; what remained after the grace period was killed.
    case killedAfterGrace(signalled: Int)
}

extension JobObject {
    /// Ends the job as `termination` says: its signal to every member, up
    /// to its grace period for the job to empty, then `terminate(exitCode:)`
    /// for what remains. Returns once the job is empty. The cgroup stays
    /// (`close()` removes it).
    @discardableResult
    public func terminate(_ termination: GracefulTermination, exitCode: Int32 = 1) async throws(JobObjectError) -> TerminationOutcome {
        if try isEmpty { return .wasEmpty }
        var signalled = 0
        if termination.grace > .zero {
            signalled = try signal(termination.signal)
            if await waitUntilEmpty(within: termination.grace), try isEmpty { return .leftWithinGrace(signalled: signalled) }
        }
        try await terminate(exitCode: exitCode)
        return .killedAfterGrace(signalled: signalled)
    }

    /// Whether the job emptied within `limit` (on `cgroup.events`, not by polling).
    private func waitUntilEmpty(within limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await self.waitUntilEmpty()) != nil }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
