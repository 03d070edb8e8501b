import CJobShim
import Glibc
import Synchronization

/// Turns a job's kernel files and process exits into `JobEvent`s for any
/// number of consumers.
///
/// `cgroup.events`, `memory.events` and `pids.events` signal changes with
/// EPOLLPRI; after every wake-up all three are re-read and the differences
/// from the last reading are emitted, so notifications the kernel coalesces
/// lose nothing. The CPU time budget and notification limits have no kernel
/// notification: they are sampled every `JobObject.samplingInterval`.
final class JobEventMonitor: Sendable {
    private let directory: CgroupDirectory
    private let state = Mutex(State())
    /// The budget to enforce and what to call, once, when it is used up.
    private let budget = Mutex<(CPUTimeBudget, @Sendable (CPUTimeBudget, Duration) -> Void)?>(nil)

    private struct State {
        var consumers: [Int: AsyncStream<JobEvent>.Continuation] = [:]
        var nextConsumer = 0
        var counters = JobEventCounters()
        var watched: [(fd: CInt, token: UInt64)] = []
        var sampler: Task<Void, Never>?
        var thresholds = NotificationLimits()
        var stopped = false
        /// The job emptied, but a start or exit it tracks is not reported
        /// yet: those come first, as on Windows, then active-process-zero.
        var zeroPending = false
        var startsInFlight = 0
        /// Live processes of the job, for following forks; `spawned` are the
        /// handle's own, whose exits the handle reports.
        var members: Set<pid_t> = []
        var spawned: Set<pid_t> = []
        var connectorSubscription: (connector: ProcessEventsConnector, id: UInt64)?
        var recentForks: [(child: pid_t, parent: pid_t)] = []
        var recentExits: [(pid: pid_t, code: Int32)] = []
        /// `awaitDescendantExits` callers, resumed once every descendant's
        /// exit is reported (or their time is up).
        var exitWaiters: [CheckedContinuation<Void, Never>] = []

        /// Descendants seen to start whose exit is not reported yet
        /// (processes spawned through the handle report their own).
        var descendantExitsPending: Bool { counters.descendantsTracked && !members.isSubset(of: spawned) }
    }

    init(directory: CgroupDirectory) {
        self.directory = directory
    }

    deinit { stop() }

    // MARK: descendants (process events connector)

    /// Starts following forks and exits inside the job: `members` are the
    /// processes in it now; every process they fork joins them (no process
    /// can leave a job, so descent is membership).
    func trackDescendants(of members: [pid_t], connector: ProcessEventsConnector? = .shared) {
        guard let connector else { return }
        state.withLock { state in
            state.members.formUnion(members)
            state.counters.descendantsTracked = true
        }
        let id = connector.subscribe { [weak self] events, lost in self?.handle(events, lost: lost) }
        state.withLock { $0.connectorSubscription = (connector, id) }
    }

    /// A process this handle spawned: its start and exit are reported by the
    /// handle, but what it forks are descendants.
    func adopt(_ pid: pid_t) {
        emitWithState { state in
            guard state.counters.descendantsTracked else { return [] }
            state.members.insert(pid)
            state.spawned.insert(pid)
            // It may have forked before this call; those forks wait in recentForks.
            var out: [JobEvent] = []
            var found = true
            while found {
                found = false
                for (child, parent) in state.recentForks where state.members.contains(parent) && !state.members.contains(child) {
                    state.members.insert(child)
                    state.counters.descendantsStarted += 1
                    out.append(.descendantStarted(pid: child, parent: parent))
                    found = true
                }
            }
            // ... and those may have exited already, too.
            for (child, code) in state.recentExits where state.members.contains(child) && !state.spawned.contains(child) {
                state.members.remove(child)
                state.counters.descendantsExited += 1
                out.append(.descendantExited(ProcessExit(pid: child, status: ExitStatus(waitStatus: code))))
            }
            return out
        }
    }

    /// Forks and exits of processes not (yet) known are kept while a spawn
    /// is in flight, for `adopt`: the connector can report a spawned
    /// process's children before the spawn call has returned. At other
    /// times they are some other process's. A spawn stalled while the
    /// machine forks this many times loses the oldest, and says so.
    private static let unattributedLimit = 65536

    private func handle(_ events: [jobshim_proc_event], lost: Bool) {
        emitWithState { state in
            var out: [JobEvent] = []
            if lost { out += Self.noteLoss(&state) }
            let keepUnattributed = state.startsInFlight > 0
            for event in events {
                switch Int(event.what) {
                case Int(JOBSHIM_PROC_FORK):
                    // A new process (not a thread) whose parent is in the job.
                    guard event.pid == event.tgid else { continue }
                    guard state.members.contains(event.parent_tgid) else {
                        if keepUnattributed { state.recentForks.append((event.tgid, event.parent_tgid)) }
                        continue
                    }
                    state.members.insert(event.tgid)
                    state.counters.descendantsStarted += 1
                    out.append(.descendantStarted(pid: event.tgid, parent: event.parent_tgid))
                case Int(JOBSHIM_PROC_EXIT):
                    // The whole process ended (its leader's exit), not one thread.
                    guard event.pid == event.tgid else { continue }
                    guard state.members.remove(event.tgid) != nil else {
                        if keepUnattributed { state.recentExits.append((event.tgid, event.exit_code)) }
                        continue
                    }
                    if state.spawned.remove(event.tgid) != nil { continue }
                    state.counters.descendantsExited += 1
                    out.append(.descendantExited(ProcessExit(pid: event.tgid, status: ExitStatus(waitStatus: event.exit_code))))
                default:
                    continue
                }
            }
            if state.recentForks.count > Self.unattributedLimit || state.recentExits.count > Self.unattributedLimit {
                state.recentForks.removeFirst(max(0, state.recentForks.count - Self.unattributedLimit / 2))
                state.recentExits.removeFirst(max(0, state.recentExits.count - Self.unattributedLimit / 2))
                out += Self.noteLoss(&state)
            }
            return out
        }
        resumeExitWaiters(onlyIfDrained: true)
    }

    /// Descendant events went missing: counted always, reported once (an
    /// overflowing connector would otherwise report it at every read).
    private static func noteLoss(_ state: inout State) -> [JobEvent] {
        state.counters.descendantEventLosses += 1
        return state.counters.descendantEventLosses == 1 ? [.descendantEventsLost] : []
    }

    /// A new stream; its first element is `.subscribed` with the counters now.
    func subscribe() -> AsyncStream<JobEvent> {
        startWatching()
        let (stream, continuation) = AsyncStream.makeStream(of: JobEvent.self)
        let subscribed = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.nextConsumer += 1
            state.consumers[state.nextConsumer] = continuation
            continuation.yield(.subscribed(state.counters))
            return true
        }
        // A consumer that stops iterating is dropped at the next event
        // (its yield reports `.terminated`), not by an `onTermination`
        // handler: that runs on the cancelling thread under the task's
        // status lock, while events are yielded under `state`'s lock and
        // a yield takes that status lock — the two would deadlock.
        if !subscribed { continuation.finish() }
        return stream
    }

    /// A spawn or assignment is about to happen. Until `finishStart`, an
    /// empty job does not count as active-process-zero: the new process may
    /// run and exit before its start is reported.
    func beginStart() {
        state.withLock { $0.startsInFlight += 1 }
    }

    /// The spawn or assignment ended; `pid` is the process, nil if it failed.
    func finishStart(_ pid: pid_t?) {
        emitWithState { state in
            state.startsInFlight -= 1
            if state.startsInFlight == 0 {
                state.recentForks.removeAll(keepingCapacity: true)
                state.recentExits.removeAll(keepingCapacity: true)
            }
            var events: [JobEvent] = []
            if let pid {
                state.counters.processesStarted += 1
                events.append(.processStarted(pid: pid))
                // The job held a process just now, even if a reading of
                // cgroup.events (coalesced by the kernel) never shows it.
                state.counters.populated = true
            }
            return events + Self.pendingZero(&state)
        }
        // ... and if it is empty again already, the kernel's notification
        // may be gone: read the state now.
        if pid != nil && state.withLock({ !$0.watched.isEmpty }) { refresh() }
    }

    /// Active-process-zero once the job is empty and every tracked start
    /// and exit has been reported.
    private static func pendingZero(_ state: inout State) -> [JobEvent] {
        guard state.zeroPending, state.startsInFlight == 0,
            state.counters.processesExited >= state.counters.processesStarted
        else { return [] }
        state.zeroPending = false
        return [.activeProcessZero]
    }

    func processExited(_ exit: ProcessExit) {
        emitWithState { state in
            state.counters.processesExited += 1
            var events: [JobEvent] = [.processExited(exit)]
            if exit.status.isAbnormal {
                state.counters.abnormalExits += 1
                events.append(.abnormalExit(exit))
            }
            return events + Self.pendingZero(&state)
        }
    }

    func setNotificationLimits(_ limits: NotificationLimits) {
        state.withLock { $0.thresholds = limits }
        startSampling()
    }

    /// Applies `change` to the counters under the lock and sends the events
    /// it returns to every consumer, in order.
    private func emit(_ change: (inout JobEventCounters) -> [JobEvent]) {
        emitWithState { change(&$0.counters) }
    }

    private func emitWithState(_ change: (inout State) -> [JobEvent]) {
        state.withLock { state in
            for event in change(&state) {
                for (id, consumer) in state.consumers {
                    if case .terminated = consumer.yield(event) { state.consumers.removeValue(forKey: id) }
                }
            }
        }
    }

    // MARK: kernel files

    private static let files = ["cgroup.events", "memory.events", "pids.events"]

    private func startWatching() {
        let start = state.withLock { state -> Bool in
            guard state.watched.isEmpty, !state.stopped else { return false }
            state.watched = [(-1, 0)]  // claimed; filled below
            return true
        }
        guard start else { return }
        var watched: [(CInt, UInt64)] = []
        for file in Self.files {
            guard case .success(let fd) = Syscall.openat(directory.fd, file, O_RDONLY) else { continue }
            if let token = try? EventLoop.shared.add(
                fd: fd, events: UInt32(EPOLLPRI.rawValue),
                handler: { [weak self] _ in
                    self?.refresh()
                })
            {
                watched.append((fd, token))
            } else {
                Syscall.close(fd)
            }
        }
        state.withLock { $0.watched = watched }
        refresh()
    }

    /// Re-reads every watched file (which also re-arms EPOLLPRI) and emits
    /// the differences.
    private func refresh() {
        // The files are read under the lock, so that readings and the
        // freeze/thaw notes of the handle apply in the order they happened.
        emitWithState { state in
            var values: [Substring: Substring] = [:]
            for (fd, _) in state.watched where fd >= 0 {
                if case .success(let text) = FileContents.read(fd: fd) {
                    values.merge(text.keyedValues) { first, _ in first }
                }
            }
            func number(_ key: Substring) -> Int { Int(values[key] ?? "0") ?? 0 }
            var events: [JobEvent] = []
            let populated = values["populated"] == "1"
            let frozen = values["frozen"] == "1"
            if state.counters.populated && !populated {
                state.zeroPending = true
                events += Self.pendingZero(&state)
            }
            var counters = state.counters
            defer { state.counters = counters }
            if frozen != counters.frozen { events.append(frozen ? .frozen : .thawed) }
            counters.populated = populated
            counters.frozen = frozen
            // memory.events and pids.events both have "max": read pids' by its own file.
            let deltas: [(WritableKeyPath<JobEventCounters, Int>, Int, (Int) -> JobEvent)] = [
                (\.outOfMemoryKills, number("oom_kill"), { .outOfMemoryKill(count: $0) }),
                (\.memoryHighCrossed, number("high"), { .memoryHighCrossed(count: $0) }),
            ]
            for (path, now, make) in deltas where now > counters[keyPath: path] {
                events.append(make(now - counters[keyPath: path]))
                counters[keyPath: path] = now
            }
            return events
        }
        refreshMax()
    }

    /// The handle froze or thawed the job and the kernel confirmed it. A
    /// freeze and thaw quicker than the monitor's next reading would leave
    /// no trace in the file's state, so the handle reports them itself.
    func noteFrozen(_ frozen: Bool) {
        emitWithState { state in
            guard state.counters.frozen != frozen else { return [] }
            state.counters.frozen = frozen
            return [frozen ? .frozen : .thawed]
        }
    }

    /// "max" means different things in memory.events and pids.events.
    private func refreshMax() {
        func max(in file: String) -> Int? {
            guard case .success(let text) = FileContents.read(at: directory.fd, file) else { return nil }
            return Int(text.keyedValues["max"] ?? "")
        }
        let memoryMax = max(in: "memory.events")
        let pidsMax = max(in: "pids.events")
        emit { counters in
            var events: [JobEvent] = []
            if let now = memoryMax, now > counters.memoryLimitReached {
                events.append(.memoryLimitReached(count: now - counters.memoryLimitReached))
                counters.memoryLimitReached = now
            }
            if let now = pidsMax, now > counters.processLimitReached {
                events.append(.processLimitReached(count: now - counters.processLimitReached))
                counters.processLimitReached = now
            }
            return events
        }
    }

    // MARK: sampling (no kernel notification exists)

    func startSampling() {
        let monitor = self
        state.withLock { state in
            guard state.sampler == nil, !state.stopped else { return }
            state.sampler = Task.detached {
                while !Task.isCancelled {
                    monitor.sample()
                    try? await Task.sleep(for: JobObject.samplingInterval)
                }
            }
        }
    }

    private func sample() {
        guard case .success(let text) = FileContents.read(at: directory.fd, "cpu.stat") else { return }
        let cpu = CPUStat(text)
        let used = cpu.user + cpu.system
        let memory = FileContents.read(at: directory.fd, "memory.current").map { UInt64($0.trimmingWhitespace) }
        let enforced = budget.withLock { $0 }
        var budgetHit = false
        emit { counters in
            guard !counters.cpuTimeBudgetReached, let (budget, _) = enforced, used >= budget.limit else { return [] }
            counters.cpuTimeBudgetReached = true
            budgetHit = true
            return [.cpuTimeBudgetReached(used: used)]
        }
        let thresholds = state.withLock { state -> NotificationLimits in
            defer {
                if let limit = state.thresholds.cpuTime, used > limit { state.thresholds.cpuTime = nil }
                if let limit = state.thresholds.memory, case .success(let current?) = memory, current > limit {
                    state.thresholds.memory = nil
                }
            }
            return state.thresholds
        }
        if let limit = thresholds.cpuTime, used > limit {
            emit { _ in [.cpuTimeThresholdExceeded(used: used, threshold: limit)] }
        }
        if let limit = thresholds.memory, case .success(let current?) = memory, current > limit {
            emit { _ in [.memoryThresholdExceeded(current: current, threshold: limit)] }
        }
        if budgetHit, let (budget, reached) = enforced { reached(budget, used) }
    }

    /// Enforces `value`: `reached` runs once when the job's CPU time gets there.
    func setBudget(_ value: CPUTimeBudget, reached: @escaping @Sendable (CPUTimeBudget, Duration) -> Void) {
        budget.withLock { $0 = (value, reached) }
        state.withLock { $0.counters.cpuTimeBudgetReached = false }
        startSampling()
    }

    /// The counters now (for accounting).
    var counters: JobEventCounters { state.withLock { $0.counters } }

    /// Waits (at most `timeout`) until the connector has reported the exit
    /// of every descendant it saw start. The kernel empties the cgroup
    /// (cgroup_exit) before it sends a process's exit event, so a job can be
    /// empty, and closed, before the last exits arrive; a closing job waits
    /// for them so that its stream stays lossless. Bounded, because the
    /// connector drops messages when its socket buffer overflows.
    func awaitDescendantExits(timeout: Duration = .milliseconds(500)) async {
        var timer: Task<Void, Never>?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting = state.withLock { state in
                guard state.descendantExitsPending else { return false }
                state.exitWaiters.append(continuation)
                return true
            }
            guard waiting else { return continuation.resume() }
            timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.resumeExitWaiters(onlyIfDrained: false)
            }
        }
        timer?.cancel()
    }

    /// Resumes the `awaitDescendantExits` callers: when no descendant exit
    /// is pending any more, or unconditionally (their time is up).
    private func resumeExitWaiters(onlyIfDrained: Bool) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if onlyIfDrained && state.descendantExitsPending { return [] }
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Ends every stream and stops watching (the job is closed).
    func stop() {
        // A last reading first: the job is empty now (a removed cgroup's
        // cgroup.events reads unpopulated), and the kernel's notification of
        // it may not have been handled yet — a short-lived job would end its
        // streams without active-process-zero.
        if state.withLock({ !$0.watched.isEmpty && !$0.stopped }) { refresh() }
        let (watched, sampler, consumers, subscription) = state.withLock { state in
            defer {
                state.watched = []
                state.sampler = nil
                state.consumers = [:]
                state.stopped = true
                state.connectorSubscription = nil
            }
            return (state.watched, state.sampler, state.consumers, state.connectorSubscription)
        }
        sampler?.cancel()
        if let subscription { subscription.connector.unsubscribe(subscription.id) }
        for (fd, token) in watched where fd >= 0 {
            EventLoop.shared.remove(fd: fd, token: token)
            Syscall.close(fd)
        }
        for consumer in consumers.values { consumer.finish() }
    }
}
