import Synchronization

/// The children this process reaps through pidfds (spawned payloads and the
/// watchdog). The child subreaper consults it so that it reaps only orphans
/// and never steals the exit status of a process a handle waits for.
final class ProcessRegistry: Sendable {
    static let shared = ProcessRegistry()

    private let pids = Mutex<Set<Int32>>([])
    /// Held across clone + insert while a subreaper scans, so a scan never
    /// sees a fresh child before it is registered.
    let spawnLock = Mutex<Void>(())
    private let subreaperActive = Atomic<Bool>(false)

    func insert(_ pid: Int32) { _ = pids.withLock { $0.insert(pid) } }
    func remove(_ pid: Int32) { _ = pids.withLock { $0.remove(pid) } }
    func contains(_ pid: Int32) -> Bool { pids.withLock { $0.contains(pid) } }

    var isSubreaperActive: Bool { subreaperActive.load(ordering: .acquiring) }
    func setSubreaperActive() { subreaperActive.store(true, ordering: .releasing) }

    /// Runs `body` (which creates and registers a child) so that no scan of
    /// orphans runs at the same time, when a subreaper is active.
    func spawning<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        guard isSubreaperActive else { return try body() }
        return try spawnLock.withLock { _ throws(E) in try body() }
    }
}
