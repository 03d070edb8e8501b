import CJobShim
import Glibc
import Synchronization

/// The monitor of the process: `epoll` over pidfds, cgroup event files and
/// eventfds, calling a handler for each ready descriptor.
///
/// One thread waits on it: the loop's own thread, started at the first
/// registration, or a thread running a `CallingThreadExecutor`, which waits
/// on it while it has no job to run (a supervisor then needs no second
/// thread at all). Handlers run on that thread and must be quick (read a
/// file, resume a continuation). Blocking work never runs here, and no
/// async code blocks.
final class EventLoop: Sendable {
    typealias Handler = @Sendable (_ events: UInt32) -> Void

    /// Shared by every job and process handle of the process.
    static let shared = EventLoop()

    private let epollFD: CInt
    private let handlers = Mutex<[UInt64: Handler]>([:])
    private let nextToken = Atomic<UInt64>(1)
    private let driver = Mutex(Driver.nobody)

    /// Who waits on the epoll set. The own thread, once started, runs for
    /// the life of the process.
    private enum Driver { case nobody, ownThread, callingThread }

    /// A loop of its own; the process's jobs and handles use `shared`
    /// (tests make their own, to see how one starts its thread).
    init() {
        switch Syscall.epollCreate() {
        case .success(let fd): epollFD = fd
        case .failure(let errno): fatalError("epoll_create1 failed: \(errno); the process is out of descriptors")
        }
    }

    /// Watches `fd` for `events` (EPOLLIN, EPOLLPRI …); returns a token for `remove`.
    func add(fd: CInt, events: UInt32, handler: @escaping Handler) throws(JobObjectError) -> UInt64 {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        handlers.withLock { $0[token] = handler }
        let result = valueOrErrno { jobshim_epoll_ctl(epollFD, CInt(EPOLL_CTL_ADD), fd, events, token) }
        if case .failure(let errno) = result {
            _ = handlers.withLock { $0.removeValue(forKey: token) }
            throw JobObjectError.system(errno, operation: "watch descriptor", what: "add descriptor to epoll")
        }
        startThreadIfUndriven()
        return token
    }

    /// Stops watching; call before closing `fd`. A handler already running may still finish.
    func remove(fd: CInt, token: UInt64) {
        _ = handlers.withLock { $0.removeValue(forKey: token) }
        _ = jobshim_epoll_ctl(epollFD, CInt(EPOLL_CTL_DEL), fd, 0, 0)
    }

    /// Makes the calling thread the one that waits on the loop (with
    /// `runOnce`) until `stopDriving()`. False when another thread already
    /// does: the loop's own thread, or another `CallingThreadExecutor`.
    func startDriving() -> Bool {
        driver.withLock { driver in
            guard driver == .nobody else { return false }
            driver = .callingThread
            return true
        }
    }

    /// Hands the loop back: its own thread starts if anything is still
    /// watched (else at the next registration), so no event waits unseen.
    func stopDriving() {
        driver.withLock { $0 = .nobody }
        // After the hand-back, not before: an `add` that ran meanwhile saw
        // a driver and started nothing; this sees its handler.
        if !handlers.withLock({ $0.isEmpty }) { startThreadIfUndriven() }
    }

    /// Waits up to `timeoutMilliseconds` (-1: without end) for ready
    /// descriptors and runs their handlers. Only the driving thread calls it.
    func runOnce(timeoutMilliseconds: CInt) {
        let capacity = 64
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: capacity) { tokens in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: capacity) { events in
                let n = jobshim_epoll_wait(epollFD, tokens.baseAddress, events.baseAddress, CInt(capacity), timeoutMilliseconds)
                // n < 0: EINTR (a signal handler ran); the caller loops.
                for i in 0..<max(0, Int(n)) {
                    if let handler = handlers.withLock({ $0[tokens[i]] }) { handler(events[i]) }
                }
            }
        }
    }

    private func startThreadIfUndriven() {
        let start = driver.withLock { driver in
            guard driver == .nobody else { return false }
            driver = .ownThread
            return true
        }
        guard start else { return }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { context in
                // run() never returns: the thread lives as long as the process.
                Unmanaged<EventLoop>.fromOpaque(context!).takeRetainedValue().run()
            }, context)
        precondition(rc == 0, "cannot start the JobObjects monitor thread: \(rc)")
        pthread_detach(thread)
    }

    private func run() -> Never {
        setThreadName("jobobjects-mon")
        while true { runOnce(timeoutMilliseconds: -1) }
    }
}

private func setThreadName(_ name: String) {
    _ = jobshim_set_thread_name(name)
}
