import Foundation
import Glibc
import Synchronization
import Testing
import JobObjects

/// `CallingThreadExecutor.run` (jobsup runs each command with it): the task,
/// what it resumes after another thread wakes it or a process exits, its
/// child tasks and the tasks it starts with the executor's preference all
/// run on the thread that called `run`, which returns the task's result or
/// throws its error. (Whether that thread also drives the monitor depends on
/// what this test process did before; `SupervisorTests.runsOnOneThread`
/// covers that, in a process of its own.)
struct CallingThreadExecutorTests {
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
            try? CallingThreadExecutor.run {
                steps.note("start")
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    Thread.detachNewThread { continuation.resume() }
                }
                steps.note("resumed by another thread")
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { steps.note("child task") }
                }
                await Task(executorPreference: CallingThreadExecutor.current) { steps.note("started task") }.value
                try? await Task.sleep(for: .milliseconds(1))
                steps.note("after a sleep")
            }
            return steps
        }
        #expect(
            steps.onCaller.withLock { $0 } == [
                "start": true, "resumed by another thread": true, "child task": true, "started task": true,
                "after a sleep": true,
            ])
    }

    @Test func theTasksErrorIsThrown() async {
        struct Failure: Error {}
        let thrown = await onAThreadOfItsOwn { () -> Bool in
            do { try CallingThreadExecutor.run { throw Failure() } } catch { return error is Failure }
            return false
        }
        #expect(thrown)
    }

    @Test func theTasksResultIsReturned() async throws {
        let result = await onAThreadOfItsOwn { try? CallingThreadExecutor.run { 42 } }
        #expect(result == 42)
    }

    /// A process's exit and its job's cgroup events reach a task waiting here.
    @Test func aJobRunsToItsEnd() async throws {
        let outcome = await onAThreadOfItsOwn { () -> (JobObjects.ExitStatus, String)? in
            try? CallingThreadExecutor.run {
                let job = try JobObject.create(name: uniqueJobName())
                let status = try await job.spawn("/bin/sh", "-c", "sleep 0.05; exit 7").wait()
                try await job.close()
                return (status, job.path.string)
            }
        }
        let (status, path) = try #require(outcome)
        #expect(status == .exited(code: 7))
        expectNothingLeft(path: path)
    }
}
