import Glibc
import Synchronization

/// The children this process reaps through pidfds (spawned payloads and the
/// watchdog). The child subreaper consults it so that it reaps only orphans
/// and never steals the exit status of a process a handle waits for.
package final class ProcessRegistry: Sendable {
    package static let shared = ProcessRegistry()

    private let pids = Mutex<Set<Int32>>([])
    /// Spawns hold it shared from clone until the child is registered; a scan
    /// for orphans holds it exclusively, so it never sees a fresh child that
    /// is not registered yet. Concurrent spawns do not wait for each other.
    private let spawnScanLock = ReadWriteLock()

    package func insert(_ pid: Int32) { _ = pids.withLock { $0.insert(pid) } }
    package func remove(_ pid: Int32) { _ = pids.withLock { $0.remove(pid) } }
    package func contains(_ pid: Int32) -> Bool { pids.withLock { $0.contains(pid) } }

    /// Runs `body`, which creates and registers a child, outside any scan.
    package func spawning<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        spawnScanLock.lockShared()
        defer { spawnScanLock.unlock() }
        return try body()
    }

    /// Starts a helper child with `start` (a C call that returns 0 and sets
    /// the pid, or -1 with errno) and registers it before any orphan scan
    /// can see it, so the child subreaper never takes its exit status.
    package func startChild(_ pid: inout pid_t, _ start: (inout pid_t) -> CInt) -> CInt {
        spawning { () -> CInt in
            let rc = start(&pid)
            if rc == 0 { insert(pid) }
            return rc
        }
    }

    /// Runs `body`, a scan for orphans, while no spawn is between clone and registration.
    package func scanning<T>(_ body: () -> T) -> T {
        spawnScanLock.lockExclusive()
        defer { spawnScanLock.unlock() }
        return body()
    }
}

/// pthread_rwlock_t at a stable address.
final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func lockShared() { pthread_rwlock_rdlock(lock) }
    func lockExclusive() { pthread_rwlock_wrlock(lock) }
    func unlock() { pthread_rwlock_unlock(lock) }
}
