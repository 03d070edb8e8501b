import CJobShim
import Glibc
import Synchronization

/// Fork and exit events of every process on the machine, from the
/// kernel's process events connector, delivered to subscribers on the
/// monitor thread. Opened on first use; nil when the host does not allow it
/// (it needs CAP_NET_ADMIN), and then jobs count only what they spawn.
final class ProcessEventsConnector: Sendable {
    /// Called with each batch; `lost` when the kernel dropped events
    /// before it (the socket was full).
    typealias Subscriber = @Sendable (_ events: [jobshim_proc_event], _ lost: Bool) -> Void

    /// The process-wide connector, or nil where it cannot be opened.
    static let shared: ProcessEventsConnector? = ProcessEventsConnector()

    /// Every fork and exit on the machine arrives here; a burst (a build
    /// forking hundreds of compilers) while the reader is not scheduled
    /// overflows the default buffer (~200 messages) and the kernel drops
    /// events. Memory is only used while messages wait.
    static let defaultBufferBytes: CInt = 8 << 20

    private let fd: CInt
    private let loop: EventLoop
    /// For the read's gap check: the number expected next from each CPU.
    private let nextSequence: Mutex<[UInt64]>
    private let token = Mutex<UInt64?>(nil)
    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextID = Atomic<UInt64>(1)

    /// A connector read on `loop` (tests use a small buffer and a loop of
    /// their own to make the kernel drop events; without `reportsOverruns`
    /// only the gap in the events' numbers shows the loss).
    init?(bufferBytes: CInt = defaultBufferBytes, loop: EventLoop = .shared, reportsOverruns: Bool = true) {
        let fd = jobshim_proc_events_open(bufferBytes, reportsOverruns ? 1 : 0)
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.loop = loop
        nextSequence = Mutex([UInt64](repeating: 0, count: max(1, sysconf(Int32(_SC_NPROCESSORS_CONF)))))
        let added = try? loop.add(fd: fd, events: UInt32(EPOLLIN.rawValue)) { [weak self] _ in
            self?.drain()
        }
        guard let added else {
            Syscall.close(fd)
            return nil
        }
        token.withLock { $0 = added }
    }

    deinit {
        if let token = token.withLock({ $0 }) { loop.remove(fd: fd, token: token) }
        Syscall.close(fd)
    }

    func subscribe(_ subscriber: @escaping Subscriber) -> UInt64 {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        subscribers.withLock { $0[id] = subscriber }
        return id
    }

    func unsubscribe(_ id: UInt64) {
        _ = subscribers.withLock { $0.removeValue(forKey: id) }
    }

    /// Reads one batch. The loop is level-triggered and calls again while
    /// events remain; one batch per call keeps a machine that forks without
    /// pause from holding the loop's thread, which every handle shares.
    private func drain() {
        var buffer = [jobshim_proc_event](repeating: jobshim_proc_event(), count: 256)
        var lost: CInt = 0
        let n = nextSequence.withLock { next in
            jobshim_proc_events_read(fd, &buffer, CInt(buffer.count), &next, CInt(next.count), &lost)
        }
        guard n > 0 || lost != 0 else { return }
        let events = Array(buffer[0..<max(0, Int(n))])
        for subscriber in subscribers.withLock({ Array($0.values) }) { subscriber(events, lost != 0) }
    }
}

extension ExitStatus {
    /// Decodes a wait status (as `waitpid` and the proc connector report it).
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited(code: (status >> 8) & 0xff)
        } else {
            self = .signaled(signal: signal, coreDumped: status & 0x80 != 0)
        }
    }
}
