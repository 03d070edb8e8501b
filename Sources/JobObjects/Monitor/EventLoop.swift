import CJobShim
import Glibc
import Synchronization

/// The one monitor thread of the process: `epoll` over pidfds, cgroup event
/// files and eventfds, calling a handler for each ready descriptor.
///
/// Handlers run on the monitor thread and must be quick (read a file, resume
/// a continuation). Blocking work never runs here, and no async code blocks.
final class EventLoop: Sendable {
    typealias Handler = @Sendable (_ events: UInt32) -> Void

    /// Shared by every job and process handle of the process; started on first use.
    static let shared = EventLoop()

    private let epollFD: CInt
    private let handlers = Mutex<[UInt64: Handler]>([:])
    private let nextToken = Atomic<UInt64>(1)

    private init() {
        switch Syscall.epollCreate() {
        case .success(let fd): epollFD = fd
        case .failure(let errno): fatalError("epoll_create1 failed: \(errno); the process is out of descriptors")
        }
        startThread()
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
        return token
    }

    /// Stops watching; call before closing `fd`. A handler already running may still finish.
    func remove(fd: CInt, token: UInt64) {
        _ = handlers.withLock { $0.removeValue(forKey: token) }
        _ = jobshim_epoll_ctl(epollFD, CInt(EPOLL_CTL_DEL), fd, 0, 0)
    }

    private func startThread() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            // run() never returns: the thread lives as long as the process.
            Unmanaged<EventLoop>.fromOpaque(context!).takeRetainedValue().run()
        }, context)
        precondition(rc == 0, "cannot start the JobObjects monitor thread: \(rc)")
        pthread_detach(thread)
    }

    private func run() -> Never {
        setThreadName("jobobjects-mon")
        var tokens = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        while true {
            let n = jobshim_epoll_wait(epollFD, &tokens, &events, 64, -1)
            if n < 0 { continue }  // EINTR
            for i in 0..<Int(n) {
                let token = tokens[i]
                if let handler = handlers.withLock({ $0[token] }) {
                    handler(events[i])
                }
            }
        }
    }
}

private func setThreadName(_ name: String) {
    _ = jobshim_set_thread_name(name)
}
