import CJobShim
import Glibc
import Synchronization

/// Fork and exit events of every process on the machine, from the
/// kernel's process events connector, delivered to subscribers on the
/// monitor thread. Opened on first use; nil when the host does not allow it
/// (it needs CAP_NET_ADMIN), and then jobs count only what they spawn.
final class ProcessEventsConnector: Sendable {
    typealias Subscriber = @Sendable ([jobshim_proc_event]) -> Void

    /// The process-wide connector, or nil where it cannot be opened.
    static let shared: ProcessEventsConnector? = ProcessEventsConnector()

    private let fd: CInt
    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextID = Atomic<UInt64>(1)

    private init?() {
        let fd = jobshim_proc_events_open()
        guard fd >= 0 else { return nil }
        self.fd = fd
        let added = try? EventLoop.shared.add(fd: fd, events: UInt32(EPOLLIN.rawValue)) { [weak self] _ in
            self?.drain()
        }
        if added == nil {
            Syscall.close(fd)
            return nil
        }
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
        let n = jobshim_proc_events_read(fd, &buffer, CInt(buffer.count))
        // ENOBUFS: the kernel dropped events; the counts are a lower bound then.
        guard n > 0 else { return }
        let events = Array(buffer[0..<Int(n)])
        for subscriber in subscribers.withLock({ Array($0.values) }) { subscriber(events) }
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
