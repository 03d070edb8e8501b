import CJobShim
import Glibc
import Synchronization
import SystemPackage

/// A process held by its pidfd, so signals and waits always reach the
/// process it was made for, never a later one that reuses its pid.
///
/// The handle reaps its process as soon as it exits (the monitor (EventLoop)
/// watches the pidfd), so no zombie lingers and the status is never lost,
/// whether or not anyone calls `wait()`.
public final class ProcessHandle: Sendable, CustomStringConvertible {
    /// The process id, for display and for /proc. Act on the process through the handle.
    public let pid: pid_t
    /// How the process was created, for processes this library spawned.
    public let spawnPath: SpawnPath?
    /// The caller's end of a `.pipe` standard input, to write to and close.
    public let standardInput: FileDescriptor?
    /// The caller's end of a `.pipe` standard output, to read and close.
    public let standardOutput: FileDescriptor?
    /// The caller's end of a `.pipe` standard error, to read and close.
    public let standardError: FileDescriptor?

    let pidfd: CInt
    private let reaps: Bool
    private let state = Mutex(State())

    private struct State {
        var status: ExitStatus?
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
        var exitHandlers: [@Sendable (ExitStatus) -> Void] = []
        var token: UInt64?
    }

    /// Takes ownership of `pidfd`. When `reaps` (the process is our child),
    /// the handle reaps it on exit; otherwise it only observes the exit.
    init(
        pid: pid_t, pidfd: CInt, reaps: Bool, spawnPath: SpawnPath?,
        standardInput: FileDescriptor? = nil, standardOutput: FileDescriptor? = nil,
        standardError: FileDescriptor? = nil
    ) throws(JobObjectError) {
        self.pid = pid
        self.pidfd = pidfd
        self.reaps = reaps
        self.spawnPath = spawnPath
        self.standardInput = standardInput
        self.standardOutput = standardOutput
        self.standardError = standardError
        if reaps { ProcessRegistry.shared.insert(pid) }
        // The monitor holds the handle until its process exits, so a handle
        // the caller drops early still reaps its process and no zombie stays.
        let token = try EventLoop.shared.add(fd: pidfd, events: UInt32(EPOLLIN.rawValue)) { _ in
            self.processExited()
        }
        // The process may have exited (and been handled) before the token was stored.
        let alreadyExited = state.withLock { state -> Bool in
            state.token = token
            return state.status != nil
        }
        if alreadyExited { stopWatching() }
    }

    /// Opens a handle on an existing process that is not necessarily a child
    /// (`pidfd_open`). Its exit is observed but not reaped.
    public convenience init(observing pid: pid_t) throws(JobObjectError) {
        let fd = try Syscall.pidfdOpen(pid).orThrow("open process", path: "/proc/\(pid)", what: "open a pidfd for process \(pid)")
        try self.init(pid: pid, pidfd: fd, reaps: false, spawnPath: nil)
    }

    deinit {
        if let token = state.withLock({ $0.token }) {
            EventLoop.shared.remove(fd: pidfd, token: token)
        }
        Syscall.close(pidfd)
    }

    /// Sends `signal` to this process (`pidfd_send_signal`: never to a
    /// process that reused its pid). Throws `.processExited` when it has
    /// already exited.
    public func signal(_ signal: Signal) throws(JobObjectError) {
        switch Syscall.pidfdSendSignal(pidfd, signal.rawValue) {
        case .success: return
        case .failure(.noSuchProcess):
            throw JobObjectError(.processExited, "process \(pid) has already exited", operation: "signal process")
        case .failure(let errno):
            throw JobObjectError.system(errno, operation: "signal process", what: "send \(signal) to process \(pid)")
        }
    }

    /// Sends signal number `signal`; use `signal(_: Signal)`.
    @available(*, deprecated, message: "pass a Signal: signal(.terminate), signal(Signal(number))")
    public func signal(_ signal: Int32) throws(JobObjectError) {
        try self.signal(Signal(signal))
    }

    /// The exit status once the process has exited, else nil. Never blocks.
    public var exitStatus: ExitStatus? { state.withLock { $0.status } }

    /// Waits until the process exits and returns how it ended.
    public func wait() async -> ExitStatus {
        if let status = exitStatus { return status }
        return await withCheckedContinuation { continuation in
            let ready: ExitStatus? = state.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Calls `handler` once, on the monitor's thread, when the process exits
    /// (at once if it already has).
    func onExit(_ handler: @escaping @Sendable (ExitStatus) -> Void) {
        let ready: ExitStatus? = state.withLock { state in
            if let status = state.status { return status }
            state.exitHandlers.append(handler)
            return nil
        }
        if let ready { handler(ready) }
    }

    private func stopWatching() {
        let token = state.withLock { state -> UInt64? in
            defer { state.token = nil }
            return state.token
        }
        if let token { EventLoop.shared.remove(fd: pidfd, token: token) }
    }

    /// Called on the monitor's thread when the pidfd becomes readable. Runs
    /// its effect once: a level-triggered wake-up can repeat before the
    /// registration is removed.
    private func processExited() {
        guard state.withLock({ $0.status == nil }) else { return stopWatching() }
        let status: ExitStatus
        if reaps {
            switch Syscall.waitPidfd(pidfd, options: WNOHANG) {
            case .success(let info?): status = ExitStatus(info)
            case .success(nil): return  // spurious wake-up: not exited yet
            case .failure: status = .unknown
            }
            ProcessRegistry.shared.remove(pid)
        } else {
            switch Syscall.waitPidfd(pidfd, options: WNOHANG | WNOWAIT) {
            case .success(let info?): status = ExitStatus(info)
            default: status = .unknown  // not our child: the kernel keeps its status from us
            }
        }
        let (waiters, handlers) = state.withLock { state in
            state.status = status
            defer {
                state.waiters = []
                state.exitHandlers = []
            }
            return (state.waiters, state.exitHandlers)
        }
        stopWatching()
        for handler in handlers { handler(status) }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    public var description: String { "process \(pid)" }
}
