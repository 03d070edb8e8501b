/// Runs async work from synchronous code on the calling thread: starts it as
/// a task that prefers a `CallingThreadExecutor` and runs that executor until
/// the task finishes (see `JobSupMain` for why jobsup's main thread is not an
/// async main, and `CallingThreadExecutor` for why no thread pool).
enum BlockingTask {
    static func run(_ body: @escaping @Sendable () async throws -> Void) throws {
        let executor = CallingThreadExecutor()
        let outcome = Outcome()
        CallingThreadExecutor.$current.withValue(executor) {
            Task(executorPreference: executor) {
                do { try await body() } catch { outcome.error = error }
                executor.stop()
            }
        }
        executor.run()
        if let error = outcome.error { throw error }
    }

    /// The task's error, handed to the calling thread; the executor's lock
    /// orders the write before the read.
    private final class Outcome: @unchecked Sendable {
        var error: (any Error)?
    }
}
