import Glibc

/// Runs tasks' jobs one at a time on the thread that calls `run()`:
/// jobsup's main thread. A command's tasks prefer it (`Task(executorPreference:)`),
/// so running one starts no Swift concurrency thread pool, whose start-up
/// (worker threads, their malloc arenas, the hand-off back to the waiting
/// main thread) cost ~0.55 ms of a 3.9 ms `jobsup run -- /bin/true`.
/// Continuations resumed by the library's monitor thread land here too.
final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// The executor running the current task, for the tasks it starts
    /// (a task-local: unstructured tasks copy it).
    @TaskLocal static var current: CallingThreadExecutor?

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var jobs: [UnownedJob] = []
    private var stopped = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Ends `run()` once the jobs queued so far have run.
    func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Runs jobs as they come until `stop()`.
    func run() {
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty && !stopped { pthread_cond_wait(condition, mutex) }
            let batch = jobs
            jobs = []
            let done = batch.isEmpty && stopped
            pthread_mutex_unlock(mutex)
            if done { return }
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
