import CJobShim
import Glibc

/// Runs async work on the thread that calls `run(_:)`, one job at a time,
/// and makes that thread the library's monitor while it waits: a supervisor
/// runs on one thread, with no Swift concurrency thread pool and no monitor
/// thread.
///
/// ```swift
/// let status = try CallingThreadExecutor.run {
///     let job = try JobObject.create()
///     let status = try await job.spawn("make").wait()
///     try await job.close()
///     return status
/// }
/// ```
///
/// Why: for a short-lived supervisor the thread pool's start-up and
/// hand-offs, and the monitor thread's start and the hop from it at every
/// event, are most of its run (Benchmarks/ANALYSIS.md). Package API: jobsup
/// uses it; it is not a promise to library users.
///
/// Tasks the body starts run here when they prefer this executor:
/// `Task(executorPreference: CallingThreadExecutor.current)`. Continuations
/// resumed from other threads (a `Task.sleep`'s timer) land here too.
///
/// Only one thread at a time drives the monitor: if the library's own
/// monitor thread already runs (any job or process handle was used before),
/// or another `run` drives it, this one runs jobs only and the monitor stays
/// where it is. When `run` returns, the monitor's own thread takes over if
/// anything is still watched (a process handle, a job's events). Tasks still
/// waiting then never run again. Do not call `run` from a task of another
/// `run` on the same thread: the inner one would wait on its own wake-up
/// only, and neither the outer tasks nor (if the outer drives it) the
/// monitor would be served meanwhile.
package final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// The executor running the current task, for the tasks it starts
    /// (a task-local: unstructured tasks copy it).
    @TaskLocal package static var current: CallingThreadExecutor?

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Written when a job arrives from another thread while `run` waits.
    private let wakeFD: CInt
    private let owner = pthread_self()
    // Guarded by `mutex`.
    private var jobs: [UnownedJob] = []
    private var stopped = false
    private var waiting = false

    /// Runs `body` as a task on the calling thread and returns its result
    /// once it finishes.
    package static func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let executor = try CallingThreadExecutor()
        let outcome = Outcome<T>()
        $current.withValue(executor) {
            Task(executorPreference: executor) {
                do { outcome.result = .success(try await body()) } catch { outcome.result = .failure(error) }
                executor.stop()
            }
        }
        executor.runUntilStopped()
        // The result is set before stop(); the mutex orders it before this read.
        return try outcome.result!.get()
    }

    private init() throws(JobObjectError) {
        wakeFD = try Syscall.eventfd().orThrow("run on the calling thread", what: "create an eventfd")
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        Syscall.close(wakeFD)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        let wake = takeWaiting()
        pthread_mutex_unlock(mutex)
        if wake { signalWake() }
    }

    /// Ends `runUntilStopped()` once the jobs queued so far have run.
    private func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        let wake = takeWaiting()
        pthread_mutex_unlock(mutex)
        if wake { signalWake() }
    }

    /// Whether the owner must be woken: it waits, and the caller is another
    /// thread (the owner itself, in a monitor handler, sees the job when
    /// the wait returns). Called with the mutex held.
    private func takeWaiting() -> Bool {
        guard waiting, pthread_equal(pthread_self(), owner) == 0 else { return false }
        waiting = false
        return true
    }

    private func signalWake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Runs jobs as they come until `stop()`; between them, waits on the
    /// monitor (when this thread drives it) or on the wake-up alone.
    private func runUntilStopped() {
        let wakeToken = driveMonitor()
        defer {
            if let wakeToken {
                EventLoop.shared.remove(fd: wakeFD, token: wakeToken)
                EventLoop.shared.stopDriving()
            }
        }
        while true {
            pthread_mutex_lock(mutex)
            waiting = false
            let batch = jobs
            jobs = []
            if batch.isEmpty && stopped {
                pthread_mutex_unlock(mutex)
                return
            }
            waiting = batch.isEmpty
            pthread_mutex_unlock(mutex)
            if batch.isEmpty {
                if wakeToken != nil {
                    EventLoop.shared.runOnce(timeoutMilliseconds: -1)
                } else {
                    var poller = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
                    _ = poll(&poller, 1, -1)
                    drainEventFD(wakeFD)
                }
                continue
            }
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    /// Takes the monitor over when no other thread drives it, with the
    /// wake-up among its descriptors; returns the wake-up's token then.
    private func driveMonitor() -> UInt64? {
        guard EventLoop.shared.startDriving() else { return nil }
        let token = try? EventLoop.shared.add(fd: wakeFD, events: UInt32(EPOLLIN.rawValue)) { [wakeFD] _ in
            drainEventFD(wakeFD)
        }
        if token == nil { EventLoop.shared.stopDriving() }
        return token
    }

    /// The body's result, handed to the calling thread.
    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }
}

private func drainEventFD(_ fd: CInt) {
    var count: UInt64 = 0
    _ = withUnsafeMutableBytes(of: &count) { read(fd, $0.baseAddress, 8) }
}
