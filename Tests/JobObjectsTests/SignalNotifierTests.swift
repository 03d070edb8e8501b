import CJobShim
import Glibc
@testable import JobObjects
@testable import Supervisor
import Synchronization
import Testing

/// A signal goes to the notifier made last for it, so these run one by one;
/// each puts the default dispositions back, so that a SIGTERM from outside (a
/// timeout) still ends the test process. Signals are sent to the process,
/// not raised in the test's thread: the concurrency pool's threads block them.
@Suite("signal notifier and forwarder", .serialized)
struct SignalNotifierTests {
    @Test func handlerGetsEachSignalInOrder() async throws {
        defer { restoreDefaults([SIGUSR1, SIGUSR2]) }
        let received = Mutex<[Int32]>([])
        let notifier = try SignalNotifier([SIGUSR1, SIGUSR2]) { signal in received.withLock { $0.append(signal) } }
        // One at a time: two pending signals may be taken by two threads.
        kill(getpid(), SIGUSR1)
        #expect(await delivered { received.withLock { $0 } == [SIGUSR1] }, "received \(received.withLock { $0 })")
        kill(getpid(), SIGUSR2)
        #expect(await delivered { received.withLock { $0 } == [SIGUSR1, SIGUSR2] })
        // A notifier made with a handler has no stream of its own.
        for await signal in notifier.signals { Issue.record("unexpected \(signal) in the stream") }
    }

    @Test func streamGetsEachSignal() async throws {
        defer { restoreDefaults([SIGUSR1]) }
        let notifier = try SignalNotifier([SIGUSR1])
        kill(getpid(), SIGUSR1)
        var iterator = notifier.signals.makeAsyncIterator()
        #expect(await iterator.next() == SIGUSR1)
    }

    /// A notifier for other signals leaves the first one's signal to it.
    @Test func notifiersOfDifferentSignalsAreIndependent() async throws {
        defer { restoreDefaults([SIGUSR1, SIGUSR2]) }
        let first = Mutex<[Int32]>([])
        let second = Mutex<[Int32]>([])
        let one = try SignalNotifier([SIGUSR1]) { signal in first.withLock { $0.append(signal) } }
        let two = try SignalNotifier([SIGUSR2]) { signal in second.withLock { $0.append(signal) } }
        kill(getpid(), SIGUSR1)
        #expect(await delivered { first.withLock { $0 } == [SIGUSR1] })
        kill(getpid(), SIGUSR2)
        #expect(await delivered { second.withLock { $0 } == [SIGUSR2] })
        #expect(first.withLock { $0 } == [SIGUSR1])
        withExtendedLifetime((one, two)) {}
    }

    /// SIGKILL cannot be caught: refused before anything changes, so the
    /// previous notifier still delivers. (That the refused one closes its
    /// pipe: `refusedNotifiersLeaveNoDescriptors`.)
    @Test func refusedSignalsChangeNothing() async throws {
        defer { restoreDefaults([SIGUSR1, SIGUSR2]) }
        let received = Mutex<[Int32]>([])
        let notifier = try SignalNotifier([SIGUSR1]) { signal in received.withLock { $0.append(signal) } }
        let error = #expect(throws: JobObjectError.self) { try SignalNotifier([SIGUSR2, SIGKILL]) { _ in } }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("SIGKILL") == true)
        #expect(hasDefaultDisposition(SIGUSR2))
        kill(getpid(), SIGUSR1)
        #expect(await delivered { received.withLock { $0 } == [SIGUSR1] })
        withExtendedLifetime(notifier) {}
    }

    /// A refused notifier closes the pipe it made and leaves the event loop.
    /// The tests beside this one open and close a few descriptors of this
    /// process meanwhile, so one refusal cannot be told apart; 300 that each
    /// kept their pipe would leave 600.
    @Test func refusedNotifiersLeaveNoDescriptors() throws {
        let before = try openDescriptorCount()
        for _ in 0..<300 {
            #expect(throws: JobObjectError.self) { try SignalNotifier([SIGKILL]) { _ in } }
        }
        let after = try openDescriptorCount()
        #expect(after - before < 100, "\(before) descriptors open before, \(after) after")
    }

    /// jobsup installs its forwarder before the payload starts: a signal
    /// that arrives before there is a payload waits for it, and none passes
    /// once the payload is being ended.
    @Test func routeHoldsSignalsUntilItHasADestination() {
        let route = SignalRoute()
        let passed = Mutex<[Int32]>([])
        route.receive(SIGUSR1)
        route.receive(SIGHUP)
        route.open { signal in passed.withLock { $0.append(signal) } }
        #expect(passed.withLock { $0 } == [SIGUSR1, SIGHUP])
        route.receive(SIGUSR2)
        #expect(passed.withLock { $0 } == [SIGUSR1, SIGHUP, SIGUSR2])
        route.close()
        route.receive(SIGTERM)
        #expect(passed.withLock { $0 } == [SIGUSR1, SIGHUP, SIGUSR2])
    }

    @Test func forwarderPassesSignalsOn() async throws {
        let policy = SignalPolicy(caught: [SIGUSR1, SIGWINCH], keepIgnored: false, initBlocked: [])
        defer { restoreDefaults(policy.caught) }
        let forwarder = try SignalForwarder(policy)
        let passed = Mutex<[Int32]>([])
        forwarder.forward { signal in passed.withLock { $0.append(signal) } }
        kill(getpid(), SIGUSR1)
        #expect(await delivered { passed.withLock { $0 } == [SIGUSR1] })
        kill(getpid(), SIGWINCH)
        #expect(await delivered { passed.withLock { $0 } == [SIGUSR1, SIGWINCH] })
        forwarder.stop()
    }

    /// keepingIgnored: an ignored signal stays ignored and is not reported;
    /// the others named are caught.
    @Test func keepingIgnoredLeavesAnIgnoredSignalAlone() async throws {
        defer { restoreDefaults([SIGUSR1, SIGUSR2]) }
        Glibc.signal(SIGUSR2, SIG_IGN)
        let received = Mutex<[Int32]>([])
        let notifier = try SignalNotifier([SIGUSR2, SIGUSR1], keepingIgnored: true) { signal in
            received.withLock { $0.append(signal) }
        }
        var action = sigaction()
        sigaction(SIGUSR2, nil, &action)
        #expect(unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == 1, "SIGUSR2 must stay SIG_IGN")
        kill(getpid(), SIGUSR2)
        kill(getpid(), SIGUSR1)
        #expect(await delivered { received.withLock { $0 } == [SIGUSR1] })
        #expect(received.withLock { $0 } == [SIGUSR1])
        withExtendedLifetime(notifier) {}
    }

    /// A write of this process's own to a closed pipe raises SIGPIPE, which
    /// the notifier does not report (the write fails with EPIPE); a SIGPIPE
    /// sent by another process is reported.
    @Test func ownBrokenPipeIsNotReportedButOneSentByOthersIs() async throws {
        defer { restoreDefaults([SIGPIPE]) }
        let received = Mutex<[Int32]>([])
        let notifier = try SignalNotifier([SIGPIPE]) { signal in received.withLock { $0.append(signal) } }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        var byte: UInt8 = 1
        #expect(write(fds[1], &byte, 1) == -1 && errno == EPIPE)
        close(fds[1])
        // Another process's SIGPIPE, after ours: once it is reported, ours
        // would have been before it.
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let kill = try job.spawn(SpawnOptions("kill", arguments: ["-PIPE", "\(getpid())"]))
            #expect(await kill.wait() == .exited(code: 0))
        }
        #expect(await delivered { received.withLock { $0 } == [SIGPIPE] })
        withExtendedLifetime(notifier) {}
    }

    /// A synchronous signal another process sends (`kill -SEGV`) is a
    /// signal like any other: reported, and the process goes on.
    @Test(arguments: [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGSYS])
    func aSynchronousSignalSentByAnotherProcessIsReported(_ signal: Int32) async throws {
        defer { restoreDefaults([signal]) }
        let received = Mutex<[Int32]>([])
        let notifier = try SignalNotifier([signal]) { signal in received.withLock { $0.append(signal) } }
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let kill = try job.spawn(SpawnOptions("kill", arguments: ["-\(signal)", "\(getpid())"]))
            #expect(await kill.wait() == .exited(code: 0))
        }
        #expect(await delivered { received.withLock { $0 } == [signal] })
        withExtendedLifetime(notifier) {}
    }
}

/// A fault of the process's own, or its own abort, is still a crash with a
/// notifier for that signal: the replaced action (here the default) ends
/// the process, where a notifier that took the signal would return to the
/// faulting instruction for ever. Each in a forked child, which makes only
/// async-signal-safe calls (it is a copy of a threaded process) and is
/// registered so that no reaper of the test process takes its status.
@Suite("own faults stay crashes")
struct OwnFaultTests {
    @Test func aFaultOfItsOwnEndsTheProcess() throws {
        #expect(try Self.statusOfChild(notifyingOf: SIGSEGV) { UnsafeMutablePointer<Int>(bitPattern: 8)!.pointee = 1 } == SIGSEGV)
    }

    @Test func anAbortOfItsOwnEndsTheProcess() throws {
        #expect(try Self.statusOfChild(notifyingOf: SIGABRT) { abort() } == SIGABRT)
    }

    /// The signal that ended a child which installed the notifier's handler
    /// for `signal` over the default action and then ran `crash`; nil if
    /// it exited instead.
    private static func statusOfChild(notifyingOf signal: Int32, crash: () -> Void) throws -> Int32? {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { for fd in fds { close(fd) } }
        let signals = [signal]
        var pid: pid_t = 0
        let rc = ProcessRegistry.shared.startChild(&pid) { pid in
            pid = fork()
            guard pid == 0 else { return pid < 0 ? -1 : 0 }
            Glibc.signal(signal, SIG_DFL)
            _ = signals.withUnsafeBufferPointer { jobshim_notify_signals(fds[1], $0.baseAddress, 1, 0) }
            crash()
            _exit(99)
        }
        #expect(rc == 0)
        defer { ProcessRegistry.shared.remove(pid) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signaled = status & 0x7f
        return signaled != 0 && signaled != 0x7f ? signaled : nil
    }
}

private func restoreDefaults(_ signals: [Int32]) {
    for signal in signals { Glibc.signal(signal, SIG_DFL) }
}

/// Whether `signal` has SIG_DFL (a null handler) as its disposition now.
private func hasDefaultDisposition(_ signal: Int32) -> Bool {
    var action = sigaction()
    sigaction(signal, nil, &action)
    return action.__sigaction_handler.sa_handler == nil
}

/// How many descriptors this process has open: the entries of
/// /proc/self/fd, less "." and ".." and the one that lists them.
private func openDescriptorCount() throws -> Int {
    let dir = try #require(opendir("/proc/self/fd"))
    defer { closedir(dir) }
    var count = -1
    while let entry = readdir(dir) {
        if withUnsafeBytes(of: entry.pointee.d_name, { $0.first }) != UInt8(ascii: ".") { count += 1 }
    }
    return count
}

/// Waits for a signal's effect. The handler runs on the library's monitor
/// thread, which the VM tier (emulated CPUs, the rest of the suite forking
/// hundreds of processes) has been seen to reach a minute and more after
/// the signal; a signal that never arrives still fails the test, later.
private func delivered(_ condition: () -> Bool) async -> Bool {
    await eventually(within: .seconds(300), condition)
}
