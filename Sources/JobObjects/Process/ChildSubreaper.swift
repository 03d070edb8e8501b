import CJobShim
import Glibc
import Synchronization
import SystemPackage

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphans
/// of its descendants are re-parented to it instead of to init, and it reaps
/// them and reports how they ended.
///
/// Only orphans are reaped: a child that a `ProcessHandle` waits for through
/// its pidfd is left to that handle, so its exit status is never stolen.
/// Enabling installs a SIGCHLD handler (which only wakes the monitor thread),
/// so it is meant for supervisors that own their process. Through the same
/// wake-ups a supervisor can follow its init's job-control stops
/// (`onStop(of:_:)`).
///
/// ```swift
/// let reaper = try ChildSubreaper.enable()
/// let orphans = reaper.orphanExits  // before starting what may leave orphans
/// Task { for await orphan in orphans { print(orphan) } }
/// ```
public final class ChildSubreaper: Sendable {
    /// Each orphan reaped from the first use of this property on, with its
    /// status. Buffered; one consumer. Orphans reaped before that are only
    /// counted (`reapedCount`): a supervisor that never reads the stream
    /// neither pays for one nor keeps every exit in its buffer.
    public var orphanExits: AsyncStream<ProcessExit> {
        stream.withLock { stream in
            if let stream { return stream.exits }
            let made = OrphanStream()
            stream = made
            return made.exits
        }
    }
    private let stream = Mutex<OrphanStream?>(nil)
    private let eventFD: CInt
    private let reaped = Atomic<Int>(0)
    private let stopWatchers = Mutex<[StopWatcher]>([])

    private struct StopWatcher {
        let process: ProcessHandle
        let handler: @Sendable (Int32) -> Void
    }

    private static let instance = Mutex<ChildSubreaper?>(nil)

    /// Enables subreaping for this process (once; later calls return the same reaper).
    public static func enable() throws(JobObjectError) -> ChildSubreaper {
        try instance.withLock { existing throws(JobObjectError) -> ChildSubreaper in
            if let existing { return existing }
            let reaper = try ChildSubreaper()
            existing = reaper
            return reaper
        }
    }

    private init() throws(JobObjectError) {
        _ = try Syscall.setChildSubreaper(true).orThrow("enable child subreaper", what: "set PR_SET_CHILD_SUBREAPER")
        eventFD = try Syscall.eventfd().orThrow("enable child subreaper", what: "create an eventfd")
        guard jobshim_notify_sigchld(eventFD) == 0 else {
            throw JobObjectError.system(
                Errno(rawValue: Glibc.errno), operation: "enable child subreaper", what: "install the SIGCHLD handler")
        }
        _ = try EventLoop.shared.add(fd: eventFD, events: UInt32(EPOLLIN.rawValue)) { [weak self] _ in
            guard let self else { return }
            var count: UInt64 = 0
            _ = withUnsafeMutableBytes(of: &count) { read(self.eventFD, $0.baseAddress, 8) }
            _ = self.reapOrphans()
            self.reportStops()
        }
        // Orphans that arrived before the handler existed.
        _ = reapOrphans()
    }

    /// How many orphans have been reaped so far.
    public var reapedCount: Int { reaped.load(ordering: .relaxed) }

    /// Reaps every exited child that no handle owns, now, and returns them.
    /// Runs on its own after each SIGCHLD; callable any time.
    @discardableResult
    public func reapOrphans() -> [ProcessExit] {
        ProcessRegistry.shared.scanning {
            // Listing the children of every thread costs a file read per
            // thread; most wake-ups (and start-up) find no child exited.
            guard jobshim_has_exited_child() != 0 else { return [] }
            var exits: [ProcessExit] = []
            let stream = stream.withLock { $0 }
            for pid in Self.children() where !ProcessRegistry.shared.contains(pid) {
                if case .success(let info?) = Syscall.waitPid(pid, options: WNOHANG) {
                    let exit = ProcessExit(pid: pid, status: ExitStatus(info))
                    exits.append(exit)
                    stream?.continuation.yield(exit)
                }
            }
            reaped.add(exits.count, ordering: .relaxed)
            return exits
        }
    }

    /// Reaps the orphans a job left once it is empty, before the caller
    /// exits: were they left, they would go to PID 1 as zombies (and stay
    /// zombies where PID 1 does not reap). A process leaves its cgroup a
    /// moment before it becomes a zombie, so a child that no handle owns is
    /// waited for up to `limit`; one that lives on after that (it left the
    /// job) is left alone. Returns how many were reaped.
    @discardableResult
    public func reapOrphansOfEndedJob(limit: Duration = .milliseconds(200)) -> Int {
        var count = reapOrphans().count
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while Self.children().contains(where: { !ProcessRegistry.shared.contains($0) }), clock.now < deadline {
            usleep(1000)
            count += reapOrphans().count
        }
        return count
    }

    /// Calls `handler` on the monitor's thread with the signal that stopped
    /// `process`, each time it stops (SIGTSTP from a terminal's ^Z, SIGTTIN,
    /// SIGTTOU, SIGSTOP), until it exits. `process` must be a child of this
    /// process: only a parent hears of its children's stops.
    public func onStop(of process: ProcessHandle, _ handler: @escaping @Sendable (Int32) -> Void) {
        stopWatchers.withLock { $0.append(StopWatcher(process: process, handler: handler)) }
        // A stop that came before the watcher existed.
        reportStops()
    }

    /// Asks each watched process whether it stopped since the last wake-up.
    private func reportStops() {
        let watchers = stopWatchers.withLock { watchers in
            watchers.removeAll { $0.process.exitStatus != nil }
            return watchers
        }
        for watcher in watchers {
            if let signal = Syscall.stopSignal(pidfd: watcher.process.pidfd) { watcher.handler(signal) }
        }
    }

    /// Children of every thread of this process, from /proc/self/task/*/children.
    static func children() -> [pid_t] {
        guard let dir = opendir("/proc/self/task") else { return [] }
        defer { closedir(dir) }
        var pids: [pid_t] = []
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(tid) != nil, case .success(let text) = FileContents.read("/proc/self/task/\(tid)/children") else { continue }
            pids += text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
        }
        return pids
    }
}

/// The orphan-exit stream, made on first use. A class, so that a reaper
/// whose stream is never used holds only a nil reference (no stream type is
/// instantiated by a program that never asks for it).
private final class OrphanStream: Sendable {
    let exits: AsyncStream<ProcessExit>
    let continuation: AsyncStream<ProcessExit>.Continuation

    init() {
        (exits, continuation) = AsyncStream.makeStream(of: ProcessExit.self)
    }
}
