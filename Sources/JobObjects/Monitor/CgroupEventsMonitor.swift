import CJobShim
import Glibc
import Synchronization

/// Waits on a cgroup's `cgroup.events` for a state (empty, frozen, thawed).
///
/// The kernel signals a change of the file with EPOLLPRI; the file is
/// re-read after every wake-up and each waiter is checked against the state
/// read, so coalesced notifications lose nothing. A waiter that arrives when
/// its state already holds returns at once.
final class CgroupEventsMonitor: Sendable {
    private let path: String
    private let directory: CgroupDirectory
    private let state = Mutex(State())

    private struct State {
        /// Set once a waiter has claimed adding the descriptor to epoll.
        var watching = false
        var token: UInt64?
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
        var backstop: Task<Void, Never>?
        /// cgroup.events, opened at the first read: a job that is made and
        /// closed without a wait never opens it.
        var fd: CInt?
    }

    /// The kernel sends at most one notification per 10 ms per file and
    /// drops a deferred one when the cgroup is removed (cgroup_file_notify),
    /// so a job emptied and removed by another process within that window
    /// would never wake its waiters. While any waiter is waiting, the state
    /// is also re-read this often.
    static let backstopInterval: Duration = .milliseconds(100)

    private struct Waiter {
        var predicate: @Sendable (CgroupEvents) -> Bool
        var continuation: CheckedContinuation<Void, Never>
    }

    init(directory: CgroupDirectory) {
        path = directory.path + "/cgroup.events"
        self.directory = directory
    }

    deinit {
        state.withLock { $0.backstop }?.cancel()
        guard let fd = state.withLock({ $0.fd }) else { return }
        if let token = state.withLock({ $0.token }) { EventLoop.shared.remove(fd: fd, token: token) }
        Syscall.close(fd)
    }

    private func fd() throws(JobObjectError) -> CInt {
        try state.withLock { state throws(JobObjectError) -> CInt in
            if let open = state.fd { return open }
            let opened = try Syscall.openat(directory.fd, "cgroup.events", O_RDONLY).orThrow("open job", path: path, what: "open")
            state.fd = opened
            return opened
        }
    }

    /// The current state. A cgroup removed meanwhile (by the watchdog, or
    /// another handle's close) reads as ENODEV: it is empty and thawed.
    func current() throws(JobObjectError) -> CgroupEvents {
        let fd: CInt
        do { fd = try self.fd() } catch  where error.errno == .noSuchFileOrDirectory {
            return CgroupEvents(populated: false, frozen: false)
        }
        switch FileContents.read(fd: fd) {
        case .success(let text): return CgroupEvents(text)
        case .failure(.operationNotSupportedByDevice): return CgroupEvents(populated: false, frozen: false)
        case .failure(let errno): throw JobObjectError.system(errno, operation: "read cgroup.events", path: path, what: "read")
        }
    }

    /// Returns once `predicate` holds for cgroup.events, or when the task is
    /// cancelled (then the caller re-checks).
    func wait(until predicate: @escaping @Sendable (CgroupEvents) -> Bool) async throws(JobObjectError) {
        if try predicate(current()) { return }
        try startWatching()
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                state.withLock { state in
                    state.waiters[id] = Waiter(predicate: predicate, continuation: continuation)
                    if state.backstop == nil { state.backstop = self.startBackstop() }
                }
                // The state may have changed before the waiter was in place.
                self.changed()
                if Task.isCancelled { self.resume(id) }
            }
        } onCancel: {
            self.resume(id)
        }
    }

    private func startBackstop() -> Task<Void, Never> {
        Task.detached { [weak self] in
            while true {
                try? await Task.sleep(for: CgroupEventsMonitor.backstopInterval)
                guard let self else { return }
                self.changed()
                let done = self.state.withLock { state -> Bool in
                    guard state.waiters.isEmpty else { return false }
                    state.backstop = nil
                    return true
                }
                if done { return }
            }
        }
    }

    private func resume(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
    }

    private func startWatching() throws(JobObjectError) {
        // Claimed under the lock: two waiters starting at once (terminate()
        // and waitUntilEmpty() of one handle) must not both add the same
        // descriptor — the second add fails with EEXIST. A waiter that finds
        // it claimed goes on at once: it re-checks the state after its
        // continuation is in place, and the backstop covers the moment
        // before the descriptor is added.
        let claimed = state.withLock { state -> Bool in
            guard !state.watching else { return false }
            state.watching = true
            return true
        }
        guard claimed else { return }
        do {
            let token = try EventLoop.shared.add(fd: fd(), events: UInt32(EPOLLPRI.rawValue)) { [weak self] _ in
                self?.changed()
            }
            state.withLock { $0.token = token }
        } catch {
            state.withLock { $0.watching = false }
            throw error
        }
    }

    /// Re-reads the file (which also re-arms EPOLLPRI) and resumes every
    /// waiter whose state now holds.
    private func changed() {
        guard let events = try? current() else { return }
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let done = state.waiters.filter { $0.value.predicate(events) }
            for id in done.keys { state.waiters.removeValue(forKey: id) }
            return done.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }
}
