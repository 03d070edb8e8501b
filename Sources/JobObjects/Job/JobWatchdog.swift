import CJobShim
import Glibc
import Synchronization
import SystemPackage

/// The Swift side of the owner-death watchdog (see `watchdog.c`): one small
/// process per owner process, started with the first job that kills on
/// close. It kills and removes every job this process still holds when this
/// process dies, even by SIGKILL, so kill-on-close always holds. It is a
/// forked child running C code only and, after a second of watching, execs
/// into an image of its own. Records sent to it wait in its socket, waking
/// nobody, until something needs acting on now: then the doorbell is rung
/// (see `jobshim_watchdog_start`). A job's create and close each queue one
/// record and cost no wake-up of the watchdog.
final class JobWatchdog: Sendable {
    static let shared = JobWatchdog()

    private struct Connection {
        var pid: pid_t
        var pidfd: CInt
        var socket: CInt
        /// An eventfd: a write wakes the watchdog to read what is queued.
        var doorbell: CInt
        /// When it was started (CLOCK_MONOTONIC, ns): one older than a
        /// second reads the socket only when rung.
        var started: Int64
        /// The pidfd's registration with the event loop, which reports the
        /// watchdog's end (`ended`).
        var token: UInt64?
    }

    private struct State {
        var connection: Connection?
        /// Told to exit (stopWhenIdle), not reaped yet.
        var exiting: Connection?
        /// Whether the next moment no job is watched ends the watchdog.
        var exitsWhenIdle = false
        /// Each watched job and its on-demand parent ("" if none); re-sent to
        /// a restarted watchdog. A list, not a dictionary: a process holds
        /// few jobs, and a String-keyed table's first use costs a runtime
        /// conformance lookup (a scan of every record in the binary).
        var watched: [(path: String, parent: String)] = []

        mutating func forget(_ path: String) -> String? {
            guard let index = watched.firstIndex(where: { $0.path == path }) else { return nil }
            return watched.remove(at: index).parent
        }
    }

    private let state = Mutex(State())

    /// Asks the watchdog to kill `path` if this process dies, and then to
    /// remove `parent` too if the library made it and it is empty.
    func watch(_ path: String, parent: String?) throws(JobObjectError) {
        try state.withLock { state throws(JobObjectError) in
            // Sent before it is recorded: a watchdog started by this send
            // is given every recorded job, and would get this one twice.
            // A watchdog past its first second learns of a first job at once:
            // it then execs if the job lasts (see watchdog.c).
            let first = state.watched.isEmpty
            try send("W", path, parent ?? "", &state)
            _ = state.forget(path)
            state.watched.append((path, parent ?? ""))
            if first, let connection = state.connection, Self.monotonicNanoseconds() - connection.started > 1_000_000_000 {
                ring(connection)
            }
        }
    }

    /// Starts the watchdog now if it is not running, without waiting for it.
    func prestart() -> Bool {
        state.withLock { state in
            if state.connection != nil { return true }
            return (try? start(&state)) != nil
        }
    }

    /// The job was closed or detached by its owner.
    func unwatch(_ path: String) {
        state.withLock { state in
            _ = state.forget(path)
            try? send("U", path, "", &state)
            exitIfIdleAndAsked(&state)
        }
    }

    /// A handle was dropped without `close()`: kill now, remove when empty.
    func killAndRemove(_ path: String) {
        state.withLock { state in
            let parent = state.forget(path) ?? ""
            try? send("R", path, parent, &state)
            if let connection = state.connection { ring(connection) }
            exitIfIdleAndAsked(&state)
        }
    }

    /// Ends the watchdog the next time no job is watched, right after the
    /// record that unwatches the last one, without waiting for it (see
    /// `JobObject.stopWatchdogWhenIdle`). A job watched after that starts a
    /// new watchdog, which stays.
    func stopWhenIdle() {
        state.withLock { $0.exitsWhenIdle = true }
    }

    /// The watchdog, asked to exit when idle and now idle, is told to exit
    /// and set aside to be reaped. One still removing a dropped job's cgroup
    /// ignores the request but sees its socket closed: it finishes the
    /// removal, then exits.
    private func exitIfIdleAndAsked(_ state: inout State) {
        guard state.exitsWhenIdle, state.watched.isEmpty, let connection = state.connection else { return }
        _ = Syscall.send(connection.socket, Array("X".utf8))
        ring(connection)
        Syscall.close(connection.socket)
        reapExiting(&state)
        state.exiting = connection
        state.connection = nil
        state.exitsWhenIdle = false
    }

    /// Waits for the watchdog told to exit, if any, and forgets it.
    private func reapExiting(_ state: inout State) {
        guard let exiting = state.exiting else { return }
        _ = Syscall.waitPidfd(exiting.pidfd, options: 0)
        release(exiting, &state)
        state.exiting = nil
    }

    /// Ends the watchdog when no job is watched, and waits for it, so that a
    /// process about to exit leaves no helper behind in its cgroup even for
    /// an instant. Returns false (and leaves it running) while jobs are watched.
    @discardableResult
    func stopIfIdle() -> Bool {
        state.withLock { state in
            reapExiting(&state)
            guard state.watched.isEmpty, let connection = state.connection else { return state.watched.isEmpty }
            _ = Syscall.send(connection.socket, Array("X".utf8))
            ring(connection)
            Syscall.close(connection.socket)
            _ = Syscall.waitPidfd(connection.pidfd, options: 0)
            release(connection, &state)
            state.connection = nil
            return true
        }
    }

    /// The watchdog's pid, for tests and diagnostics.
    var pid: pid_t? { state.withLock { $0.connection?.pid } }

    private static func record(_ op: Character, _ path: String, _ parent: String) -> [UInt8] {
        Array(String(op).utf8) + Array(path.utf8) + (parent.isEmpty ? [] : [0] + Array(parent.utf8))
    }

    private func send(_ op: Character, _ path: String, _ parent: String, _ state: inout State) throws(JobObjectError) {
        let record = Self.record(op, path, parent)
        guard path.utf8.count < Int(JOBSHIM_WATCHDOG_PATH_MAX), parent.utf8.count < Int(JOBSHIM_WATCHDOG_PATH_MAX) else {
            throw JobObjectError(
                .invalidArgument, "job path is longer than the watchdog accepts (\(JOBSHIM_WATCHDOG_PATH_MAX - 1) bytes)",
                operation: "watch job", path: path)
        }
        for attempt in 0..<2 {
            let connection: Connection
            if let existing = state.connection { connection = existing } else { connection = try start(&state) }
            switch Syscall.send(connection.socket, record, waiting: false) {
            case .success: return
            case .failure(.resourceTemporarilyUnavailable):
                // The socket is full: have the watchdog read it, and wait.
                ring(connection)
                if case .success = Syscall.send(connection.socket, record) { return }
            case .failure: break
            }
            // The watchdog is gone (killed by someone): reap it, start anew, re-watch.
            stop(connection, &state)
            state.connection = nil
            if attempt == 1 { break }
        }
        throw JobObjectError(.watchdogUnavailable, "the owner-death watchdog cannot be reached", operation: "watch job", path: path)
    }

    private func start(_ state: inout State) throws(JobObjectError) -> Connection {
        reapExiting(&state)
        var pid: pid_t = 0
        var pidfd: CInt = -1
        var socket: CInt = -1
        var doorbell: CInt = -1
        let started = Self.monotonicNanoseconds()
        let rc = ProcessRegistry.shared.startChild(&pid) { jobshim_watchdog_start(&$0, &pidfd, &socket, &doorbell) }
        guard rc == 0 else {
            throw JobObjectError(
                .watchdogUnavailable, "cannot start the owner-death watchdog", operation: "create job",
                errno: Errno(rawValue: Glibc.errno))
        }
        var connection = Connection(pid: pid, pidfd: pidfd, socket: socket, doorbell: doorbell, started: started)
        connection.token = try? EventLoop.shared.add(fd: pidfd, events: UInt32(EPOLLIN.rawValue)) { [weak self, pid] _ in
            self?.ended(pid)
        }
        state.connection = connection
        for (path, parent) in state.watched {
            _ = Syscall.send(socket, Self.record("W", path, parent))
        }
        // A replacement takes the jobs over now, not at its first ring.
        if !state.watched.isEmpty { ring(connection) }
        return connection
    }

    private func stop(_ connection: Connection, _ state: inout State) {
        Syscall.close(connection.socket)
        _ = Syscall.pidfdSendSignal(connection.pidfd, SIGKILL)
        _ = Syscall.waitPidfd(connection.pidfd, options: 0)
        release(connection, &state)
    }

    /// The watchdog `pid` ended. One told to exit is reaped. One that
    /// ended while watching (killed by someone) is replaced at once, and the
    /// new one is given every job: were this process killed next, its jobs
    /// would otherwise outlive it.
    private func ended(_ pid: pid_t) {
        state.withLock { state in
            if state.exiting?.pid == pid { return reapExiting(&state) }
            guard let connection = state.connection, connection.pid == pid else { return }
            stop(connection, &state)
            state.connection = nil
            if !state.watched.isEmpty { _ = try? start(&state) }
        }
    }

    /// After the watchdog was reaped: forgets it.
    private func release(_ connection: Connection, _ state: inout State) {
        if let token = connection.token { EventLoop.shared.remove(fd: connection.pidfd, token: token) }
        ProcessRegistry.shared.remove(connection.pid)
        Syscall.close(connection.pidfd)
        Syscall.close(connection.doorbell)
    }

    private static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Wakes the watchdog to read what is queued.
    private func ring(_ connection: Connection) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Syscall.write(connection.doorbell, $0) }
    }
}
