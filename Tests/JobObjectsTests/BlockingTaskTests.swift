import Foundation
import Glibc
import Synchronization
import Testing
@testable import Supervisor

/// jobsup runs each command's tasks on its main thread (no thread pool):
/// the task, what it resumes after another thread wakes it, its child tasks
/// and the tasks it starts with the executor's preference all run on the
/// thread that called `BlockingTask.run`, which returns the task's error.
struct BlockingTaskTests {
    /// Which steps ran on the thread that made it.
    final class Steps: Sendable {
        let caller = pthread_self()
        let onCaller = Mutex<[String: Bool]>([:])
        func note(_ step: String) { onCaller.withLock { $0[step] = pthread_equal(pthread_self(), caller) != 0 } }
    }

    /// Runs `body` on a new thread that runs no task, as jobsup's main
    /// thread is (and so as not to block one of the test runner's).
    func onAThreadOfItsOwn<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }

    @Test func everyJobRunsOnTheCallingThread() async throws {
        let steps = await onAThreadOfItsOwn { () -> Steps in
            let steps = Steps()
            try? BlockingTask.run {
                steps.note("start")
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    Thread.detachNewThread { continuation.resume() }
                }
                steps.note("resumed by another thread")
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { steps.note("child task") }
                }
                await Task(executorPreference: CallingThreadExecutor.current) { steps.note("started task") }.value
            }
            return steps
        }
        #expect(steps.onCaller.withLock { $0 } == ["start": true, "resumed by another thread": true, "child task": true, "started task": true])
    }

    @Test func theTasksErrorIsThrown() async {
        struct Failure: Error {}
        let thrown = await onAThreadOfItsOwn { () -> Bool in
            do { try BlockingTask.run { throw Failure() } } catch { return error is Failure }
            return false
        }
        #expect(thrown)
    }
}
