/// Runs async work from synchronous code on the calling thread: starts it as
/// a task that prefers a `CallingThreadExecutor` and runs that executor until
/// the task finishes (see `JobSupMain` for why jobsup's main thread is not an
/// async main, and `CallingThreadExecutor` for why no thread pool).
///
/// The calling thread must not be running a task itself: a task created from
/// one is first scheduled on the global executor, whose thread this call
/// would be blocking.
enum BlockingTask {
    static func run(_ body: @escaping @Sendable () async throws -> Void) throws {
        precondition(withUnsafeCurrentTask { $0 == nil }, "BlockingTask.run called from inside a task")
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
