import CJobShim
import Glibc
import Synchronization
import SystemPackage

/// A group of processes under one handle: the Linux counterpart of a
/// Windows job object, built on a cgroup v2 directory.
///
/// Processes spawned into a job are born inside it (`clone3` with
/// `CLONE_INTO_CGROUP`) and neither they nor their descendants can leave it,
/// however they fork or `setsid`. Closing the handle kills them all
/// (`cgroup.kill`) and removes the cgroup; so does dropping it unclosed, and
/// so does the death of the owning process, even by SIGKILL (a watchdog
/// process holds the owner's pidfd).
///
/// ```swift
/// let job = try JobObject.create(name: "build")
/// let make = try job.spawn(SpawnOptions("make", arguments: ["-j8"]))
/// let status = await make.wait()
/// try await job.close()        // kills what make left behind, removes the cgroup
/// ```
public final class JobObject: Sendable, CustomStringConvertible {
    /// The job's name: its cgroup directory's.
    public let name: JobName
    /// The cgroup the job was made under.
    public let parent: JobParent
    /// Whether closing (or dropping) this handle kills the job. True for
    /// jobs this handle created, false for jobs opened by name.
    public let killsOnClose: Bool

    let directory: CgroupDirectory
    let cgroupEvents: CgroupEventsMonitor
    let eventMonitor: JobEventMonitor
    private let state = Mutex(State())

    private struct State {
        var lifecycle = Lifecycle.open
        var running: [pid_t: ProcessHandle] = [:]
        var started = 0
        var exits: [ProcessExit] = []
        var exitCode: Int32?
        var terminationMethod: TerminationMethod?
        /// cgroup.procs, open for writing: assigning processes and the join
        /// paths. Opened at the first use; clone3 into the job needs none.
        var procsFD: CInt?
        /// Set once `cgroup.kill` was written: later spawns join instead of
        /// being cloned into the cgroup (see `spawn(_:)`).
        var killedThroughCgroup = false
        /// The limits kept by the handle, not the kernel.
        var cpuTimeBudget: CPUTimeBudget?
        var perProcess: [ResourceLimit] = []
    }

    private enum Lifecycle { case open, closing, closed, detached }

    /// The job's cgroup directory.
    public var path: FilePath { FilePath(directory.path) }
    /// The same, as the text the system calls take.
    var cgroupPath: String { directory.path }

    // MARK: Creating and opening

    /// Creates a job: a new cgroup named `name` (generated when nil) under
    /// `parent` (see `JobParent.resolve`). Nothing is left behind when this throws.
    ///
    /// `limits` are checked before anything is made; the controllers they
    /// need are enabled for the parent (only those); a controller the host
    /// cannot give is an error that names it and why.
    ///
    /// `trackDescendants`: report processes forked inside the job in the
    /// event stream (`descendantStarted`/`descendantExited`, root only). The
    /// kernel's process events connector delivers every fork and exit on the
    /// machine to the process that listens, so a caller that never reads
    /// descendant events passes false.
    public static func create(
        name: String? = nil, parent: FilePath? = nil, limits: JobLimits = JobLimits(),
        killOnClose: Bool = true, trackDescendants: Bool = true
    ) throws(JobObjectError) -> JobObject {
        let jobName = try name.map { name throws(JobObjectError) in try JobName(name) } ?? JobName.generate()
        let parent = try JobParent.resolve(parent)
        let path = CgroupPath.join(parent.cgroupPath, jobName.value)
        try limits.validate()
        try parent.checkReachable()
        try parent.prepare()
        do {
            try ControllerDelegation.enable(limits.requiredControllers, under: parent)
        } catch {
            parent.removeIfUnused()
            throw error
        }
        var created = false
        for _ in 0..<3 {
            switch Syscall.mkdir(path, 0o755) {
            case .success: created = true
            case .failure(.fileExists):
                throw JobObjectError(
                    .jobExists,
                    "a job named \"\(jobName)\" already exists under \(parent.cgroupPath); choose another name, or open it with JobObject.open(name:)",
                    operation: "create job", path: path, errno: .fileExists)
            case .failure(.noSuchFileOrDirectory):
                // Another process removed the (default) parent as its last job left; make it again.
                parent.forgetPrepared()
                try parent.prepare()
                continue
            case .failure(let errno):
                throw JobObjectError.system(errno, operation: "create job", path: path, what: "create the job's cgroup")
            }
            break
        }
        guard created else {
            throw JobObjectError(.systemCallFailed, "the job parent keeps disappearing", operation: "create job", path: path)
        }
        do {
            let job = try JobObject(
                name: jobName, parent: parent, path: path, killsOnClose: killOnClose,
                trackDescendants: trackDescendants, isNew: true)
            try job.setLimits(limits)
            if killOnClose {
                try JobWatchdog.shared.watch(path, parent: parent.removesItself ? parent.cgroupPath : nil)
                JobOwnerRecord.markOwned(job.directory.fd)
            }
            parent.reclaimAbandonedJobsOnce()
            return job
        } catch {
            _ = Syscall.rmdir(path)
            parent.removeIfUnused()
            throw error
        }
    }

    /// Opens an existing job by name, e.g. one created by another process.
    /// The handle can list, signal, freeze, account and terminate the job;
    /// closing it does not kill the job unless `killOnClose`. The job is
    /// looked for where `JobParent.lookup(parent, driver:)` says.
    public static func open(
        name: String, parent: FilePath? = nil, driver: CgroupDriver? = nil, killOnClose: Bool = false
    ) throws(JobObjectError) -> JobObject {
        let jobName = try JobName(name)
        let parents = try JobParent.lookup(parent, driver: driver)
        guard let parent = parents.first(where: { access(CgroupPath.join($0.cgroupPath, jobName.value), F_OK) == 0 }) else {
            let places = parents.count == 1 ? parents[0].cgroupPath : "any scope of the systemd driver (\(parents.count) found)"
            throw JobObjectError(
                .jobNotFound, "no job named \"\(jobName)\" under \(places)", operation: "open job",
                path: parents.count == 1 ? CgroupPath.join(parents[0].cgroupPath, jobName.value) : nil)
        }
        let path = CgroupPath.join(parent.cgroupPath, jobName.value)
        let job = try JobObject(name: jobName, parent: parent, path: path, killsOnClose: killOnClose)
        if killOnClose {
            // Processes may be in the job already: the watchdog watches it from now on.
            try JobWatchdog.shared.watch(path, parent: nil)
            JobOwnerRecord.markOwned(job.directory.fd)
        }
        return job
    }

    /// `isNew`: the cgroup was just made, so no process is in it yet.
    private init(
        name: JobName, parent: JobParent, path: String, killsOnClose: Bool,
        trackDescendants: Bool = true, isNew: Bool = false
    ) throws(JobObjectError) {
        self.name = name
        self.parent = parent
        self.killsOnClose = killsOnClose
        directory = try CgroupDirectory(opening: path)
        cgroupEvents = CgroupEventsMonitor(directory: directory)
        eventMonitor = JobEventMonitor(directory: directory)
        if trackDescendants { eventMonitor.trackDescendants(of: isNew ? [] : (try? directory.memberPIDs()) ?? []) }
    }

    /// cgroup.procs of the job, open for writing.
    private func cgroupProcs() throws(JobObjectError) -> CInt {
        try state.withLock { state throws(JobObjectError) -> CInt in
            if let open = state.procsFD { return open }
            let opened = try Syscall.openat(directory.fd, "cgroup.procs", O_WRONLY)
                .orThrow("open job", path: cgroupPath + "/cgroup.procs", what: "open for writing")
            state.procsFD = opened
            return opened
        }
    }

    deinit {
        if let fd = state.withLock({ $0.procsFD }) { Syscall.close(fd) }
        let lifecycle = state.withLock { $0.lifecycle }
        // The synchronous backstop for a handle dropped without close():
        // one write to cgroup.kill now, and the watchdog removes the cgroup
        // once it is empty.
        if lifecycle == .open || lifecycle == .closing, killsOnClose {
            _ = FileContents.write(at: directory.fd, "cgroup.kill", "1")
            JobWatchdog.shared.killAndRemove(cgroupPath)
        }
    }

    // MARK: Processes

    /// Spawns a process inside the job; it is never, even for an instant,
    /// outside it. Returns once the child has exec'd.
    @discardableResult
    public func spawn(_ options: SpawnOptions) throws(JobObjectError) -> ProcessHandle {
        var path = KernelFeatures.current.spawnPath
        // Once the job was killed through cgroup.kill, a child cloned into it
        // with CLONE_INTO_CGROUP is SIGKILLed at birth on some kernels (6.18
        // among them: the fork compares the kill count of the parent's cgroup
        // with the job's); a child that joins is not.
        if path == .clone3IntoCgroup, state.withLock({ $0.killedThroughCgroup }) { path = .cloneThenJoin }
        // Only a forked child can wait at its gate while spawn returns.
        if options.startGate != nil { path = path.forked }
        return try spawn(options, path: path)
    }

    /// Spawns `executable` with `arguments`, inheriting everything else.
    @discardableResult
    public func spawn(_ executable: String, _ arguments: String...) throws(JobObjectError) -> ProcessHandle {
        try spawn(SpawnOptions(executable, arguments: arguments))
    }

    /// Spawns by a chosen path (tests exercise the fallbacks through this).
    func spawn(_ options: SpawnOptions, path spawnPath: SpawnPath) throws(JobObjectError) -> ProcessHandle {
        try ensureOpen("spawn")
        var options = options
        let perProcess = state.withLock { $0.perProcess }
        // The job's per-process limits first, so the caller's own win.
        options.resourceLimits = perProcess + options.resourceLimits
        eventMonitor.beginStart()
        let process: ProcessHandle
        do {
            process = try ProcessRegistry.shared.spawning { () throws(JobObjectError) -> ProcessHandle in
                try Spawner.spawn(
                    options, cgroupFD: directory.fd,
                    cgroupProcsFD: spawnPath.isBornInsideJob ? -1 : cgroupProcs(), path: spawnPath)
            }
        } catch {
            eventMonitor.finishStart(nil)
            throw error
        }
        track(process)
        return process
    }

    /// Moves an existing process into the job (a write to `cgroup.procs`).
    ///
    /// The process is named by a pidfd, and the move is checked through it:
    /// if the process is still alive after the write, the pid cannot have been
    /// reused in between, so the right process moved. A process that exits
    /// during the call gives `.processExited`.
    public func assign(_ process: ProcessHandle) throws(JobObjectError) {
        try ensureOpen("assign process")
        eventMonitor.beginStart()
        do {
            try moveIntoJob(process)
        } catch {
            eventMonitor.finishStart(nil)
            throw error
        }
        track(process, keepHandle: false)
    }

    private func moveIntoJob(_ process: ProcessHandle) throws(JobObjectError) {
        guard case .success = Syscall.pidfdSendSignal(process.pidfd, 0) else {
            throw JobObjectError(.processExited, "process \(process.pid) has exited", operation: "assign process")
        }
        switch FileContents.write(fd: try cgroupProcs(), String(process.pid)) {
        case .success: break
        case .failure(.noSuchProcess):
            throw JobObjectError(.processExited, "process \(process.pid) has exited", operation: "assign process")
        case .failure(let errno):
            throw JobObjectError.system(
                errno, operation: "assign process", path: cgroupPath + "/cgroup.procs", what: "move process \(process.pid) into")
        }
        guard case .success = Syscall.pidfdSendSignal(process.pidfd, 0) else {
            throw JobObjectError(.processExited, "process \(process.pid) exited while it was being assigned", operation: "assign process")
        }
    }

    /// Moves the process `pid` into the job, holding it by a pidfd for the check.
    public func assign(pid: pid_t) throws(JobObjectError) {
        try assign(ProcessHandle(observing: pid))
    }

    /// Counts the process and reports its start and, later, its exit.
    private func track(_ process: ProcessHandle, keepHandle: Bool = true) {
        state.withLock { state in
            state.started += 1
            if keepHandle { state.running[process.pid] = process }
        }
        eventMonitor.adopt(process.pid)
        eventMonitor.finishStart(process.pid)
        let pid = process.pid
        process.onExit { [weak self] status in
            guard let self else { return }
            let exit = ProcessExit(pid: pid, status: status)
            self.state.withLock { state in
                state.running.removeValue(forKey: pid)
                state.exits.append(exit)
            }
            self.eventMonitor.processExited(exit)
        }
    }

    /// The pids of every process in the job, descendants' cgroups included.
    public func processIDs() throws(JobObjectError) -> [pid_t] {
        try directory.memberPIDs()
    }

    /// Whether no process is in the job (cgroup.events `populated 0`).
    public var isEmpty: Bool {
        get throws(JobObjectError) { try !cgroupEvents.current().populated }
    }

    /// Sends `signal` to every process in the job and returns how many got it.
    ///
    /// Each member is held by a pidfd and its cgroup checked before the
    /// signal, so a pid reused by a process outside the job is never
    /// signalled. The job is listed again after each pass and the sweep
    /// repeats until a pass finds no member it has not signalled: a process
    /// forked while the signal went round gets it too. (A job that forks
    /// faster than it can be swept stops the sweep after
    /// `Self.maximumSignalPasses`; `terminate` ends such a job.)
    @discardableResult
    public func signal(_ signal: Signal) throws(JobObjectError) -> Int {
        guard let prefix = parent.hierarchy.namespacePath(of: cgroupPath) else {
            throw JobObjectError(
                .invalidArgument,
                "the job lies outside this process's cgroup namespace, so its members' pids cannot be checked before a signal; signal it from the namespace that holds it, or kill it (cgroup.kill)",
                operation: "signal job", path: cgroupPath)
        }
        var signalled: Set<pid_t> = []
        var delivered = 0
        for _ in 0..<Self.maximumSignalPasses {
            let fresh = try processIDs().filter { !signalled.contains($0) }
            if fresh.isEmpty { break }
            for pid in fresh {
                signalled.insert(pid)
                if Self.send(signal, to: pid, inCgroup: prefix) { delivered += 1 }
            }
        }
        return delivered
    }

    /// Sends signal number `signal` to every member; use `signal(_: Signal)`.
    @available(*, deprecated, message: "pass a Signal: signal(.terminate), signal(Signal(number))")
    @discardableResult
    public func signal(_ signal: Int32) throws(JobObjectError) -> Int {
        try self.signal(Signal(signal))
    }

    /// How many times `signal` lists the job at most.
    public static let maximumSignalPasses = 16

    /// `signal` to `pid`, held by a pidfd, if it is in the cgroup `prefix`
    /// (as this process's cgroup namespace names it) or below.
    private static func send(_ signal: Signal, to pid: pid_t, inCgroup prefix: String) -> Bool {
        guard case .success(let pidfd) = Syscall.pidfdOpen(pid) else { return false }
        defer { Syscall.close(pidfd) }
        guard case .success(let text) = FileContents.read("/proc/\(pid)/cgroup"),
            let line = text.nonEmptyLines.first(where: { $0.hasPrefix("0::") })
        else { return false }
        let cgroup = line.dropFirst(3)
        guard cgroup == prefix || cgroup.hasPrefix(prefix == "/" ? prefix : prefix + "/") else { return false }
        guard case .success = Syscall.pidfdSendSignal(pidfd, signal.rawValue) else { return false }
        return true
    }

    // MARK: Freezing

    /// Freezes every process in the job (`cgroup.freeze`) and returns once
    /// the kernel reports `frozen 1`.
    public func freeze() async throws(JobObjectError) {
        try directory.write("cgroup.freeze", "1")
        try await cgroupEvents.wait { $0.frozen || !$0.populated }
        eventMonitor.noteFrozen(true)
    }

    /// Thaws the job and returns once the kernel reports `frozen 0`.
    public func thaw() async throws(JobObjectError) {
        try directory.write("cgroup.freeze", "0")
        try await cgroupEvents.wait { !$0.frozen }
        eventMonitor.noteFrozen(false)
    }

    // MARK: Ending

    /// Kills every process in the job (Windows `TerminateJobObject`) and
    /// returns once the job is empty. `exitCode` is recorded as the job's.
    ///
    /// Writes `cgroup.kill`; on kernels without it (before 5.14) freezes the
    /// job, SIGKILLs each member, always thaws, and repeats until empty.
    public func terminate(exitCode: Int32 = 1) async throws(JobObjectError) {
        state.withLock { state in
            if state.exitCode == nil { state.exitCode = exitCode }
        }
        try await killAndWaitUntilEmpty()
    }

    /// How the last `terminate` or `close` killed the job.
    public var terminationMethod: TerminationMethod? { state.withLock { $0.terminationMethod } }

    /// The exit code given to `terminate`, if the job was terminated.
    public var exitCode: Int32? { state.withLock { $0.exitCode } }

    /// One write to `cgroup.kill`, or where the kernel has none (before
    /// 5.14: the file is missing) freeze, kill each, thaw. Tried rather than
    /// looked up first: the write is what almost every kernel takes.
    private func killMembers() throws(JobObjectError) {
        do {
            try directory.write("cgroup.kill", "1")
            state.withLock { state in
                state.terminationMethod = .cgroupKill
                state.killedThroughCgroup = true
            }
        } catch  where error.errno == .noSuchFileOrDirectory {
            try kill(using: .freezeAndKill)
        }
    }

    func kill(using method: TerminationMethod) throws(JobObjectError) {
        state.withLock { $0.terminationMethod = method }
        switch method {
        case .cgroupKill:
            try directory.write("cgroup.kill", "1")
            state.withLock { $0.killedThroughCgroup = true }
        case .freezeAndKill:
            for dir in [cgroupPath] + directory.descendants().reversed() {
                guard case .success(let fd) = Syscall.open(dir, O_RDONLY | O_DIRECTORY) else { continue }
                defer { Syscall.close(fd) }
                if jobshim_kill_frozen_members(fd, 100) < 0 {
                    throw JobObjectError.system(
                        Errno(rawValue: Glibc.errno), operation: "terminate job", path: dir, what: "freeze and kill the members of")
                }
            }
        }
    }

    /// Kills every member and returns once the job is empty. The members
    /// this handle spawned are waited for on their pidfds, which report
    /// each exit at once; `cgroup.events`, which the kernel notifies at
    /// most every 10 ms, is then read, and waited on only while processes
    /// this handle does not know (their descendants) remain.
    private func killAndWaitUntilEmpty() async throws(JobObjectError) {
        let known = state.withLock { Array($0.running.values) }
        try killMembers()
        for process in known { _ = await process.wait() }
        if try isEmpty { return }
        try await waitUntilEmpty()
    }

    /// Returns once no process is left in the job (cgroup.events
    /// `populated 0`), or its cgroup is gone (removed by its owner), woken
    /// by the kernel's notification. The kernel drops a notification when
    /// the cgroup is removed within its 10 ms rate limit, so the state is
    /// also re-read every 100 ms while anyone waits.
    public func waitUntilEmpty() async throws(JobObjectError) {
        try await cgroupEvents.wait { !$0.populated }
    }

    /// Kills the job (when `killsOnClose`), waits until it is empty and
    /// removes its cgroup (and any cgroups its processes made inside it);
    /// an empty job is just removed. Calling it again does nothing.
    public func close() async throws(JobObjectError) {
        let proceed = state.withLock { state -> Bool in
            guard state.lifecycle == .open else { return false }
            state.lifecycle = .closing
            return true
        }
        guard proceed else { return }
        guard killsOnClose else {
            state.withLock { $0.lifecycle = .closed }
            return
        }
        do {
            // A job with no process left (as a rule, once its init exited)
            // goes with one rmdir, which the kernel refuses (EBUSY) while any
            // process or child cgroup remains: nothing to kill or wait for.
            if case .failure = Syscall.rmdir(cgroupPath) {
                try await killAndWaitUntilEmpty()
                try await removeCgroups()
            }
        } catch {
            // Still open: close() may be called again, and deinit or the
            // watchdog remain the backstop.
            state.withLock { $0.lifecycle = .open }
            throw error
        }
        JobWatchdog.shared.unwatch(cgroupPath)
        state.withLock { $0.lifecycle = .closed }
        await eventMonitor.awaitDescendantExits()
        eventMonitor.stop()
        parent.removeIfUnused()
    }

    /// Removes the job's cgroup, deepest first. rmdir fails with EBUSY
    /// while cgroups made inside the job remain, and can briefly after the
    /// last process left; the job's own rmdir is tried first (as a rule, no
    /// payload made cgroups of its own), then the descendants are listed and
    /// each rmdir is retried a bounded number of times with a short back-off.
    private func removeCgroups() async throws(JobObjectError) {
        if case .success = Syscall.rmdir(cgroupPath) { return }
        for dir in directory.descendants() + [cgroupPath] {
            var attempt = 0
            while true {
                switch Syscall.rmdir(dir) {
                case .success, .failure(.noSuchFileOrDirectory): break
                case .failure(.resourceBusy) where attempt < 50:
                    attempt += 1
                    try? await Task.sleep(for: .milliseconds(attempt))
                    continue
                case .failure(let errno):
                    throw JobObjectError.system(errno, operation: "close job", path: dir, what: "remove the cgroup")
                }
                break
            }
        }
    }

    /// Leaves the job running and its cgroup in place; this handle no longer
    /// kills it. Open it again by name with `JobObject.open(name:)`.
    public func detach() {
        let wasOpen = state.withLock { state -> Bool in
            guard state.lifecycle == .open else { return false }
            state.lifecycle = .detached
            return true
        }
        if wasOpen && killsOnClose {
            JobWatchdog.shared.unwatch(cgroupPath)
            JobOwnerRecord.clear(directory.fd)
        }
    }

    /// The job was removed by other means (`reclaimIfAbandoned`): the
    /// handle is closed and its monitor stopped.
    func markClosed() {
        state.withLock { $0.lifecycle = .closed }
        eventMonitor.stop()
    }

    private func ensureOpen(_ operation: String) throws(JobObjectError) {
        let lifecycle = state.withLock { $0.lifecycle }
        guard lifecycle == .open else {
            throw JobObjectError(
                .jobClosed, "the job handle is already \(lifecycle == .detached ? "detached" : "closed")", operation: operation,
                path: cgroupPath)
        }
    }

    // MARK: Limits

    /// Sets the given fields on the live job (nil fields stay as they are);
    /// processes already running are held to the new values at once. The
    /// per-process limits apply to processes spawned from now on.
    public func setLimits(_ limits: JobLimits) throws(JobObjectError) {
        try limits.validate()
        try ControllerDelegation.enable(limits.requiredControllers, under: parent)
        let missing = limits.requiredControllers.filter { !directory.has(Self.probeFile[$0] ?? "") }
        if let controller = missing.sorted().first {
            throw ControllerDelegation.unavailable(controller, parent: parent, checked: cgroupPath)
        }
        try limits.write(to: directory)
        state.withLock { state in
            if let budget = limits.cpuTimeBudget { state.cpuTimeBudget = budget }
            if !limits.perProcess.isEmpty { state.perProcess = limits.perProcess }
        }
        if let budget = limits.cpuTimeBudget {
            eventMonitor.setBudget(budget) { [weak self] budget, _ in
                guard budget.action == .terminate, let self else { return }
                // Windows ends the job with ERROR_NOT_ENOUGH_QUOTA; 137 reads as "killed".
                Task { try? await self.terminate(exitCode: 137) }
            }
        }
    }

    /// One interface file per controller, present in the job once the
    /// controller is enabled for it.
    private static let probeFile = [
        "memory": "memory.max", "pids": "pids.max", "cpu": "cpu.max",
        "cpuset": "cpuset.cpus", "io": "io.max",
    ]

    /// The limits in force: read back from the job's cgroup files, plus the
    /// CPU time budget and per-process limits the handle keeps.
    public var limits: JobLimits {
        var limits = JobLimits.read(from: directory)
        state.withLock { state in
            limits.cpuTimeBudget = state.cpuTimeBudget
            limits.perProcess = state.perProcess
        }
        return limits
    }

    // MARK: Events

    /// The job's events as an `AsyncSequence`; call it once per consumer.
    /// The first element is `.subscribed` with the state and counters so far;
    /// the stream ends when the job is closed.
    ///
    /// ```swift
    /// for await event in job.events {
    ///     if case .outOfMemoryKill(let n) = event { print("\(n) OOM kill(s)") }
    /// }
    /// ```
    public var events: AsyncStream<JobEvent> { eventMonitor.subscribe() }

    /// Arms soft thresholds that only notify (each fires once; set again to re-arm).
    public func setNotificationLimits(_ limits: NotificationLimits) {
        eventMonitor.setNotificationLimits(limits)
    }

    /// How often the CPU time budget and notification limits are checked:
    /// the kernel has no notification for CPU time or memory thresholds.
    public static let samplingInterval: Duration = .milliseconds(100)

    // MARK: Accounting

    /// CPU time (cpu.stat, present without the cpu controller), memory, IO,
    /// page faults, limit hits, live processes and threads, and the
    /// processes started through this handle and how they ended.
    public func accounting() throws(JobObjectError) -> JobAccounting {
        var accounting = try JobAccounting.read(from: directory, pids: processIDs())
        state.withLock { state in
            accounting.processesStarted = state.started
            accounting.exits = state.exits
        }
        let counters = eventMonitor.counters
        if counters.descendantsTracked {
            accounting.descendantsStarted = counters.descendantsStarted
            accounting.descendantsExited = counters.descendantsExited
        }
        return accounting
    }

    public var description: String { "job \(name) (\(cgroupPath))" }
}

extension JobObject {
    /// Starts this process's owner-death watchdog ahead of its first job
    /// that kills on close, so that its few set-up syscalls run beside the
    /// caller's own. Optional: `create` starts it otherwise; false if it
    /// cannot be started now (`create` then reports why). Call it from the
    /// cgroup the caller will stay in: the watchdog starts in its owner's
    /// cgroup, and a process there keeps controllers from being enabled for
    /// that cgroup's children. A supervisor calls it once it is in its
    /// final cgroup, before it creates its job.
    @discardableResult
    package static func prestartWatchdog() -> Bool {
        JobWatchdog.shared.prestart()
    }

    /// Stops this process's owner-death watchdog once no job that kills on
    /// close is open, and waits for it to exit. A supervisor calls this just
    /// before it exits so that nothing of it outlives it, even for a moment;
    /// the next job created starts a new watchdog. Returns false while jobs
    /// are still watched.
    @discardableResult
    public static func stopWatchdogIfIdle() -> Bool {
        JobWatchdog.shared.stopIfIdle()
    }

    /// Lets the watchdog exit as soon as no job that kills on close is open
    /// (the next time that happens), instead of at `stopWatchdogIfIdle()`:
    /// the close of the last job tells it right after the record that
    /// unwatches the job (as a rule handled in the same wake-up of the
    /// watchdog), and its exit
    /// overlaps the rest of the close. `stopWatchdogIfIdle()` still waits
    /// for it before the caller exits. A supervisor with one job calls this
    /// any time before that job closes; a job created after the watchdog
    /// exited starts a new one, which stays.
    package static func stopWatchdogWhenIdle() {
        JobWatchdog.shared.stopWhenIdle()
    }
}

/// How a job's processes were killed.
public enum TerminationMethod: Sendable, Equatable {
    /// One write to `cgroup.kill` (Linux 5.14+).
    case cgroupKill
    /// Freeze, SIGKILL each member, thaw, until empty (older kernels).
    case freezeAndKill
}

/// Creates a job, runs `body` with it and closes it, also when `body` throws.
public func withJobObject<R>(
    name: String? = nil, parent: FilePath? = nil, limits: JobLimits = JobLimits(),
    _ body: (JobObject) async throws -> R
) async throws -> R {
    let job = try JobObject.create(name: name, parent: parent, limits: limits)
    do {
        let result = try await body(job)
        try await job.close()
        return result
    } catch {
        try? await job.close()
        throw error
    }
}
