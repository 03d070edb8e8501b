import Dispatch

/// Runs async work from synchronous code: starts it as a task and blocks the
/// calling thread until it finishes (see `JobSupMain` for why jobsup's main
/// thread blocks rather than being an async main).
enum BlockingTask {
    static func run(_ body: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        Task {
            do { try await body() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }

    /// The task's error, handed to the waiting thread; the semaphore orders
    /// the write before the read.
    private final class Outcome: @unchecked Sendable {
        var error: (any Error)?
    }
}
