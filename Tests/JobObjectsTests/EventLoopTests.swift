import CJobShim
import Glibc
import Synchronization
@testable import JobObjects
import Testing

/// Who waits on an `EventLoop`: a `CallingThreadExecutor`'s thread while it
/// drives the loop, the loop's own thread otherwise. Each test makes a loop
/// of its own (the process's shared one is driven by whatever ran before);
/// a loop whose thread started keeps it for the life of the test process.
struct EventLoopTests {
    /// A descriptor the loop watches, and whether its handler ran.
    final class Watched: Sendable {
        let fd = try! Syscall.eventfd().get()
        private let flag = Atomic<Bool>(false)
        var handled: Bool { flag.load(ordering: .relaxed) }
        func reset() { flag.store(false, ordering: .relaxed) }

        func register(on loop: EventLoop) throws -> UInt64 {
            try loop.add(fd: fd, events: UInt32(EPOLLIN.rawValue)) { [self] _ in
                var value: UInt64 = 0
                _ = read(fd, &value, 8)
                flag.store(true, ordering: .relaxed)
            }
        }

        func signal() {
            var one: UInt64 = 1
            _ = write(fd, &one, 8)
        }
    }

    /// While this thread drives the loop, it handles the loop's events;
    /// handed back with the descriptor still watched, the loop starts its
    /// own thread, which handles the next event by itself. (That a
    /// registration starts no thread while the loop is driven is what
    /// `SupervisorTests.runsOnOneThread` checks, in a process of its own.)
    @Test func handedBackWithDescriptorsWatchedTheLoopStartsItsOwnThread() async throws {
        let loop = EventLoop()
        let watched = Watched()
        defer { close(watched.fd) }
        #expect(loop.startDriving())
        let token = try watched.register(on: loop)
        watched.signal()
        loop.runOnce(timeoutMilliseconds: 1000)
        #expect(watched.handled)

        watched.reset()
        loop.stopDriving()
        watched.signal()
        #expect(await eventually { watched.handled })
        // Its own thread drives it now.
        #expect(!loop.startDriving())
        loop.remove(fd: watched.fd, token: token)
    }

    /// Handed back with nothing watched, the loop starts its thread only at
    /// the next registration: a driver may still take it over meanwhile.
    @Test func handedBackIdleTheLoopWaitsForTheNextRegistration() async throws {
        let loop = EventLoop()
        #expect(loop.startDriving())
        loop.stopDriving()
        #expect(loop.startDriving())
        loop.stopDriving()
        let watched = Watched()
        defer { close(watched.fd) }
        let token = try watched.register(on: loop)
        watched.signal()
        #expect(await eventually { watched.handled })
        #expect(!loop.startDriving())
        loop.remove(fd: watched.fd, token: token)
    }
}
