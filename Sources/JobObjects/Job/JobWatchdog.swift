import CJobShim
import Glibc
import Synchronization
import SystemPackage

/// The Swift side of the owner-death watchdog (see `watchdog.c`): one small
/// forked process per owner process, started with the first job that kills
/// on close. It kills and removes every job this process still holds when
/// this process dies, even by SIGKILL, so kill-on-close always holds.
final class JobWatchdog: Sendable {
    static let shared = JobWatchdog()

    private struct Connection {
        var pid: pid_t
        var pidfd: CInt
        var socket: CInt
    }

    private struct State {
        var connection: Connection?
        /// Re-sent to a restarted watchdog.
        var watched: Set<String> = []
    }

    private let state = Mutex(State())

    /// Asks the watchdog to kill `path` if this process dies.
    func watch(_ path: String) throws(JobObjectError) {
        try state.withLock { state throws(JobObjectError) in
            state.watched.insert(path)
            try send("W", path, &state)
        }
    }

    /// The job was closed or detached by its owner.
    func unwatch(_ path: String) {
        state.withLock { state in
            state.watched.remove(path)
            try? send("U", path, &state)
        }
    }

    /// A handle was dropped without `close()`: kill now, remove when empty.
    func killAndRemove(_ path: String) {
        state.withLock { state in
            state.watched.remove(path)
            try? send("R", path, &state)
        }
    }

    /// The watchdog's pid, for tests and diagnostics.
    var pid: pid_t? { state.withLock { $0.connection?.pid } }

    private func send(_ op: Character, _ path: String, _ state: inout State) throws(JobObjectError) {
        let record = Array(String(op).utf8) + Array(path.utf8)
        guard record.count < 4096 else {
            throw JobObjectError(.invalidArgument, "job path is longer than the watchdog accepts (4095 bytes)", operation: "watch job", path: path)
        }
        for attempt in 0..<2 {
            let connection: Connection
            if let existing = state.connection { connection = existing } else { connection = try start(&state) }
            if case .success = Syscall.send(connection.socket, record) { return }
            // The watchdog is gone (killed by someone): reap it, start anew, re-watch.
            stop(connection)
            state.connection = nil
            if attempt == 1 { break }
        }
        throw JobObjectError(.watchdogUnavailable, "the owner-death watchdog cannot be reached", operation: "watch job", path: path)
    }

    private func start(_ state: inout State) throws(JobObjectError) -> Connection {
        var pid: pid_t = 0
        var pidfd: CInt = -1
        var socket: CInt = -1
        let rc = ProcessRegistry.shared.spawning { () -> CInt in
            let rc = jobshim_watchdog_start(&pid, &pidfd, &socket)
            if rc == 0 { ProcessRegistry.shared.insert(pid) }
            return rc
        }
        guard rc == 0 else {
            throw JobObjectError(.watchdogUnavailable, "cannot start the owner-death watchdog", operation: "create job",
                                 errno: Errno(rawValue: Glibc.errno))
        }
        let connection = Connection(pid: pid, pidfd: pidfd, socket: socket)
        state.connection = connection
        for path in state.watched {
            let record = Array("W".utf8) + Array(path.utf8)
            _ = Syscall.send(socket, record)
        }
        return connection
    }

    private func stop(_ connection: Connection) {
        Syscall.close(connection.socket)
        _ = Syscall.pidfdSendSignal(connection.pidfd, SIGKILL)
        _ = Syscall.waitPidfd(connection.pidfd, options: 0)
        ProcessRegistry.shared.remove(connection.pid)
        Syscall.close(connection.pidfd)
    }
}
