import CJobShim
import Glibc
import Synchronization

/// A job without a cgroup: the strongest containment left where none can
/// be made (`JobContainment.subreaper`). Made by `JobObject.createContainer`.
///
/// This process becomes a child subreaper, so an orphan in the job — the
/// middle process of a double fork has exited — is re-parented to it, never
/// to init, and no process of the job can get away by `setsid` or a new
/// process group. The members are found anew each time they are needed:
/// the processes this tree spawned, every descendant listed in
/// `/proc/PID/task/TID/children`, and the orphans re-parented to this
/// process (its children that no handle owns, in its own cgroup). Each is
/// held by a pidfd and checked to still be its parent's child before it is
/// signalled, so a reused pid is never signalled. Killing repeats until a
/// pass finds nobody: a process forked while the kill went round is found
/// through its parent, or as an orphan, in the next.
///
/// What needs a cgroup is missing: limits (per-process `resourceLimits`
/// aside), accounting and events; freezing is SIGSTOP and SIGCONT, which a
/// process can catch sight of; and should this process be SIGKILLed, the
/// members live on. Orphans are told apart only by being this process's,
/// so one process has one tree at a time, and a child this process starts
/// by other means than JobObjects while the tree exists is taken for one.
public final class ProcessTree: ProcessContainer {
    public let name: JobName
    public var containment: JobContainment { .subreaper }
    /// Why no cgroup could be made: the error `JobObject.create` gave, if
    /// it was made in its stead.
    public let reason: JobObjectError?
    /// Whether `close()` (or dropping the tree) kills what is left.
    public let killsOnClose: Bool
    private let perProcess: [ResourceLimit]
    private let state = Mutex(State())

    private struct State {
        var spawned: [ProcessHandle] = []
        var closed = false
    }

    /// Whether a tree exists in this process: orphans cannot be told apart
    /// between two.
    private static let exists = Mutex(false)

    /// Makes this process a child subreaper (until the tree is closed) and
    /// the tree ready to spawn into. `resourceLimits` are set on each
    /// process it spawns. Fails when this process holds a tree already.
    public init(
        name: String? = nil, killOnClose: Bool = true, resourceLimits perProcess: [ResourceLimit] = [],
        reason: JobObjectError? = nil
    ) throws(JobObjectError) {
        self.name = try name.map { name throws(JobObjectError) in try JobName(name) } ?? JobName.generate()
        self.reason = reason
        killsOnClose = killOnClose
        self.perProcess = perProcess
        let taken = Self.exists.withLock { exists -> Bool in
            defer { exists = true }
            return exists
        }
        if taken {
            throw JobObjectError(
                .invalidArgument,
                "this process already holds a job without a cgroup, and the orphans of two such jobs cannot be told apart; close it first, or give the jobs a cgroup",
                operation: "create job")
        }
        let was = jobshim_is_child_subreaper() == 1
        if case .failure(let errno) = Syscall.setChildSubreaper(true) {
            Self.exists.withLock { $0 = false }
            throw JobObjectError.system(errno, operation: "create job", what: "become a child subreaper (PR_SET_CHILD_SUBREAPER)")
        }
        createdAt = Self.ticksSinceBoot()
        wasSubreaper = was
    }

    /// When the tree was made, in the clock ticks of /proc/PID/stat's start
    /// time: a child of this process that no handle owns is taken for an
    /// orphan of the tree only if it started since.
    private let createdAt: UInt64

    private static func ticksSinceBoot() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        let ticks = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        return UInt64(now.tv_sec) * ticks + UInt64(now.tv_nsec) * ticks / 1_000_000_000
    }

    /// Whether this process was a subreaper before; if not, it stops being
    /// one once the tree is released.
    private let wasSubreaper: Bool

    private func release() {
        if !wasSubreaper { _ = Syscall.setChildSubreaper(false) }
        Self.exists.withLock { $0 = false }
    }

    deinit {
        let closed = state.withLock { $0.closed }
        if !closed {
            if killsOnClose { killPass() }
            release()
        }
    }

    // MARK: Processes

    @discardableResult
    public func spawn(_ options: SpawnOptions) throws(JobObjectError) -> ProcessHandle {
        guard !state.withLock({ $0.closed }) else {
            throw JobObjectError(.jobClosed, "the job \(name) is closed", operation: "spawn")
        }
        var options = options
        options.resourceLimits = perProcess + options.resourceLimits
        // No cgroup to root a namespace at.
        options.cgroupNamespace = false
        let process = try ProcessRegistry.shared.spawning { () throws(JobObjectError) -> ProcessHandle in
            try Spawner.spawn(options, cgroupFD: -1, cgroupProcsFD: -1, path: KernelFeatures.current.spawnPath)
        }
        state.withLock { $0.spawned.append(process) }
        return process
    }

    public func processIDs() throws(JobObjectError) -> [pid_t] {
        members().map { member in
            member.release()
            return member.pid
        }
    }

    public var isEmpty: Bool {
        get throws(JobObjectError) { try processIDs().isEmpty }
    }

    /// Sends `signal` to every member, in passes until one finds no member
    /// not yet signalled (at most `JobObject.maximumSignalPasses`).
    @discardableResult
    public func signal(_ signal: Signal) throws(JobObjectError) -> Int {
        var signalled: Set<pid_t> = []
        for _ in 0..<JobObject.maximumSignalPasses {
            let fresh = members().filter { member in
                if signalled.contains(member.pid) {
                    member.release()
                    return false
                }
                return true
            }
            if fresh.isEmpty { break }
            for member in fresh {
                if case .success = Syscall.pidfdSendSignal(member.pidfd, signal.rawValue) { signalled.insert(member.pid) }
                member.release()
            }
        }
        return signalled.count
    }

    /// SIGSTOP to every member, in passes until none is left running.
    public func freeze() async throws(JobObjectError) {
        _ = try signal(Signal(SIGSTOP))
    }

    /// SIGCONT to every member.
    public func thaw() async throws(JobObjectError) {
        _ = try signal(Signal(SIGCONT))
    }

    @discardableResult
    public func terminate(
        _ termination: GracefulTermination, exitCode: Int32 = 1
    ) async throws(JobObjectError)
        -> TerminationOutcome
    {
        if try isEmpty { return .wasEmpty }
        var signalled = 0
        if termination.grace > .zero {
            signalled = try signal(termination.signal)
            let clock = ContinuousClock()
            let deadline = clock.now + termination.grace
            while clock.now < deadline {
                if try await isSettledEmpty() { return .leftWithinGrace(signalled: signalled) }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        await killAndWaitUntilEmpty()
        return .killedAfterGrace(signalled: signalled)
    }

    public func close() async throws(JobObjectError) {
        let proceed = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard proceed else { return }
        if killsOnClose { await killAndWaitUntilEmpty() }
        release()
    }

    // MARK: Finding and killing members

    /// SIGKILL to every member, again until two passes in a row find none;
    /// members that are this process's children are reaped as they go.
    private func killAndWaitUntilEmpty() async {
        var emptyPasses = 0
        while emptyPasses < 2 {
            emptyPasses = killPass() > 0 ? 0 : emptyPasses + 1
            try? await Task.sleep(for: .milliseconds(1))
        }
        for process in state.withLock({ $0.spawned }) { _ = await process.wait() }
    }

    /// Empty in two scans a moment apart. One scan is not proof: the tree is
    /// read from /proc one process at a time, and an orphan that moves from
    /// its exiting parent to this process while the scan passes between the
    /// two can be missed by both reads.
    private func isSettledEmpty() async throws(JobObjectError) -> Bool {
        guard try isEmpty else { return false }
        try? await Task.sleep(for: .milliseconds(1))
        return try isEmpty
    }

    /// One SIGKILL to every member found now; returns how many there were.
    @discardableResult
    private func killPass() -> Int {
        let found = members()
        for member in found {
            _ = Syscall.pidfdSendSignal(member.pidfd, SIGKILL)
            member.release()
        }
        reapOrphans()
        return found.count
    }

    /// A member, held by a pidfd the caller releases.
    private struct Member {
        let pid: pid_t
        let pidfd: CInt
        /// False for a pidfd a `ProcessHandle` owns.
        let owned: Bool

        func release() { if owned { Syscall.close(pidfd) } }
    }

    /// Every live member now: the spawned processes still running, the
    /// orphans this process was given, and all their descendants.
    private func members() -> [Member] {
        var found: [Member] = []
        var seen: Set<pid_t> = []
        for process in state.withLock({ $0.spawned }) where process.exitStatus == nil && !Self.isZombie(process.pid) {
            found.append(Member(pid: process.pid, pidfd: process.pidfd, owned: false))
            seen.insert(process.pid)
        }
        let me = getpid()
        let ownCgroup = Self.cgroup(of: me)
        for pid in ChildSubreaper.children()
        where !seen.contains(pid) && !ProcessRegistry.shared.contains(pid)
            && (ProcessIdentity.startTime(of: pid) ?? 0) >= createdAt && Self.cgroup(of: pid) == ownCgroup
        {
            if let member = Self.hold(pid, childOf: me) {
                found.append(member)
                seen.insert(pid)
            }
        }
        var next = 0
        while next < found.count {
            let parent = found[next].pid
            next += 1
            for pid in Self.children(of: parent) where !seen.contains(pid) {
                if let member = Self.hold(pid, childOf: parent) {
                    found.append(member)
                    seen.insert(pid)
                }
            }
        }
        return found
    }

    /// A pidfd for `pid` if it is, once held, still a live child of `parent`.
    private static func hold(_ pid: pid_t, childOf parent: pid_t) -> Member? {
        guard case .success(let pidfd) = Syscall.pidfdOpen(pid) else { return nil }
        guard let stat = stat(of: pid), stat.parent == parent, stat.state != "Z", stat.state != "X" else {
            Syscall.close(pidfd)
            return nil
        }
        return Member(pid: pid, pidfd: pidfd, owned: true)
    }

    /// Reaps the orphans of the tree that have exited (a caller that runs
    /// `ChildSubreaper` may reap them first; either is fine).
    private func reapOrphans() {
        let me = getpid()
        for pid in ChildSubreaper.children() where !ProcessRegistry.shared.contains(pid) {
            if let stat = Self.stat(of: pid), stat.parent == me, stat.state == "Z" {
                _ = Syscall.waitPid(pid, options: WNOHANG)
            }
        }
    }

    private static func isZombie(_ pid: pid_t) -> Bool {
        stat(of: pid)?.state == "Z"
    }

    /// The state and parent of `pid` (fields 3 and 4 of /proc/PID/stat).
    private static func stat(of pid: pid_t) -> (state: Character, parent: pid_t)? {
        guard case .success(let text) = FileContents.read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 1, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        return (state, parent)
    }

    /// The children of every thread of `pid`.
    private static func children(of pid: pid_t) -> [pid_t] {
        guard case .success(let threads) = Syscall.listDirectory("/proc/\(pid)/task") else { return [] }
        return threads.flatMap { thread -> [pid_t] in
            guard case .success(let text) = FileContents.read("/proc/\(pid)/task/\(thread)/children") else { return [] }
            return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
        }
    }

    /// The `0::` line of /proc/PID/cgroup.
    private static func cgroup(of pid: pid_t) -> Substring? {
        guard case .success(let text) = FileContents.read("/proc/\(pid)/cgroup") else { return nil }
        return text.nonEmptyLines.first { $0.hasPrefix("0::") }
    }
}
