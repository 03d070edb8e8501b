import Foundation
import Glibc
@testable import JobObjects
import Testing

@Suite("job events")
struct EventsTests {
    /// Collects events until `stop` says so.
    func collect(_ events: AsyncStream<JobEvent>, until stop: (JobEvent) -> Bool) async -> [JobEvent] {
        var seen: [JobEvent] = []
        for await event in events {
            seen.append(event)
            if stop(event) { break }
        }
        return seen
    }

    @Test func processLifecycleAndActiveProcessZeroReachEveryConsumer() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let first = job.events
            let second = job.events
            let ok = try job.spawn("true")
            let bad = try job.spawn("sh", "-c", "exit 5")
            _ = await ok.wait()
            _ = await bad.wait()
            for stream in [first, second] {
                // `true` may exit before `sh` starts, emptying the job once
                // already: read on to the active-process-zero after both exits.
                var exits = 0
                let seen = await collect(stream) { event in
                    if case .processExited = event { exits += 1 }
                    return event == .activeProcessZero && exits == 2
                }
                #expect(seen.first.map { if case .subscribed = $0 { true } else { false } } == true)
                #expect(seen.contains(.processStarted(pid: ok.pid)) && seen.contains(.processStarted(pid: bad.pid)))
                #expect(seen.contains(.processExited(ProcessExit(pid: ok.pid, status: .exited(code: 0)))))
                #expect(seen.contains(.abnormalExit(ProcessExit(pid: bad.pid, status: .exited(code: 5)))))
                #expect(!seen.contains(.abnormalExit(ProcessExit(pid: ok.pid, status: .exited(code: 0)))))
            }
        }
    }

    @Test func aLateConsumerSeesTheStateSoFar() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            _ = try await job.spawn("sh", "-c", "exit 3").wait()
            _ = try job.spawn("sleep", "1000")
            var iterator = job.events.makeAsyncIterator()
            guard case .subscribed(let counters) = await iterator.next() else {
                Issue.record("first event was not .subscribed")
                return
            }
            #expect(counters.processesStarted == 2)
            #expect(counters.processesExited == 1)
            #expect(counters.abnormalExits == 1)
            #expect(counters.populated)
        }
    }

    @Test func freezeAndThawAreEvents() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            _ = try job.spawn("sleep", "1000")
            let events = job.events
            try await job.freeze()
            try await job.thaw()
            let seen = await collect(events) { $0 == .thawed }
            #expect(seen.contains(.frozen))
        }
    }

    /// Consumers that stop (their task cancelled) while the monitor thread
    /// is handing them events must not stop the monitor: a stream's
    /// termination used to take the monitor's lock under the cancelled
    /// task's status lock while the monitor, holding its lock, waited for
    /// that status lock to wake the consumer — a deadlock seen in
    /// `jobsup events`. The monitor still delivers afterwards.
    @Test func consumersCancelledWhileEventsFlowDoNotStopTheMonitor() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            _ = try job.spawn("sleep", "1000")
            // Events flow all along: each freeze and thaw is noted by the
            // handle and read back by the monitor thread.
            let pump = Task {
                while !Task.isCancelled {
                    try await job.freeze()
                    try await job.thaw()
                }
            }
            for _ in 0..<200 {
                // Each consumer is parked in the stream, having had its
                // first event, when it is cancelled.
                let (ready, started) = AsyncStream.makeStream(of: Void.self)
                let consumers = (0..<8).map { _ in
                    Task { [events = job.events] in
                        for await _ in events { started.yield() }
                    }
                }
                var parked = 0
                for await _ in ready {
                    parked += 1
                    if parked == consumers.count { break }
                }
                for consumer in consumers { consumer.cancel() }
                for consumer in consumers { await consumer.value }
            }
            pump.cancel()
            try? await pump.value
            let events = job.events
            try await job.freeze()
            let seen = await collect(events) { $0 == .frozen }
            #expect(seen.last == .frozen)
        }
    }

    @Test func cpuTimeNotificationLimitFiresOnce() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let events = job.events
            job.setNotificationLimits(NotificationLimits(cpuTime: .milliseconds(50)))
            let loop = try job.spawn("sh", "-c", "while :; do :; done")
            let seen = await collect(events) { if case .cpuTimeThresholdExceeded = $0 { true } else { false } }
            if case .cpuTimeThresholdExceeded(let used, let threshold) = seen.last {
                #expect(used > threshold && threshold == .milliseconds(50))
            }
            try loop.signal(.kill)
        }
    }

    @Test func streamsEndWhenTheJobCloses() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let events = job.events
        _ = try job.spawn("sleep", "1000")
        try await job.close()
        var count = 0
        for await _ in events { count += 1 }
        #expect(count >= 2)
        expectNothingLeft(path: job.path.string)
    }
}

@Suite("descendant processes (process events connector)")
struct DescendantTests {
    @Test(.enabled(if: ProcessEventsConnector.shared != nil, "the process events connector needs root"))
    func forksInsideTheJobAreReportedAndCounted() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let events = job.events
            // Three children of the shell, one of them killed by a signal.
            let shell = try job.spawn("sh", "-c", "sh -c 'exit 4'; sh -c 'exit 0'; sh -c 'kill -TERM $$'; true")
            #expect(await shell.wait() == .exited(code: 0))
            var exits: [JobObjects.ExitStatus] = []
            var started = 0
            for await event in events {
                if case .descendantStarted = event { started += 1 }
                if case .descendantExited(let exit) = event { exits.append(exit.status) }
                // A machine forking faster than the monitor reads makes the
                // kernel drop events; the counts are a lower bound then.
                if event == .descendantEventsLost { return }
                if exits.count == 3 { break }
            }
            #expect(started == 3)
            #expect(Set(exits) == [.exited(code: 4), .exited(code: 0), .signaled(signal: SIGTERM, coreDumped: false)])
            let accounting = try job.accounting()
            #expect(accounting.descendantsStarted == 3 && accounting.descendantsExited == 3)
        }
    }

    /// A reader that falls behind loses events in the kernel, and is told:
    /// a connector with a small buffer, on a loop that nothing reads while a
    /// shell in the job forks 100 times, reports the loss; the monitor
    /// turns it into one `descendantEventsLost`, counts it, and goes on
    /// counting the forks after it. Without the kernel's ENOBUFS, the gap in
    /// the events' sequence numbers alone shows the loss (as it does for an
    /// event the kernel could not allocate, which nothing else reports).
    @Test(
        .enabled(if: ProcessEventsConnector.shared != nil, "the process events connector needs root"),
        arguments: [true, false])
    func eventsTheKernelDroppedAreReportedAsLost(reportsOverruns: Bool) async throws {
        let loop = EventLoop()
        #expect(loop.startDriving())  // by this test, only when it calls runOnce
        try await Self.burstThroughASmallBuffer(read: loop, reportsOverruns: reportsOverruns)
        loop.stopDriving()
    }

    private static func burstThroughASmallBuffer(read loop: EventLoop, reportsOverruns: Bool) async throws {
        let connector = try #require(ProcessEventsConnector(bufferBytes: 4096, loop: loop, reportsOverruns: reportsOverruns))
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // A gap in a CPU's sequence numbers shows only between two
            // messages read from that CPU: one process ends on each CPU before
            // the burst (read at once, so each CPU's numbering is known) and
            // one after it.
            let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
            let onEachCPU = "for c in $(seq 0 \(cpus - 1)); do taskset -c $c /bin/true; done"
            let script =
                "\(onEachCPU); echo primed; read a; for i in $(seq 100); do /bin/true; done; echo burst; read b; \(onEachCPU)"
            var options = SpawnOptions("sh", arguments: ["-c", script])
            options.standardInput = .pipe
            options.standardOutput = .pipe
            let shell = try job.spawn(options)
            let monitor = JobEventMonitor(directory: job.directory)
            monitor.trackDescendants(of: [shell.pid], connector: connector)
            let events = monitor.subscribe()
            let input = try #require(shell.standardInput)
            #expect(await PipeReader.readUntil("primed", from: shell.standardOutput!).isEmpty)
            drain(loop)
            let afterPriming = await counters(monitor)
            try input.writeAll("go\n".utf8)
            // The forks run while nothing reads: the socket overflows.
            #expect(await PipeReader.readUntil("burst", from: shell.standardOutput!).isEmpty)
            drain(loop)
            let afterBurst = await counters(monitor)
            // ENOBUFS comes with the next read; a gap, with the next event
            // from the same CPU (the ones below).
            // (Each read that meets a loss counts one: ENOBUFS, then a gap.)
            if reportsOverruns { #expect(afterBurst.descendantEventLosses >= 1) }
            #expect(
                afterBurst.descendantsStarted - afterPriming.descendantsStarted < 100,
                "\(afterBurst.descendantsStarted - afterPriming.descendantsStarted) of 100 forks seen through 4 KiB")
            // Read as they come, the next forks are counted (unless the rest of
            // the machine fills 4 KiB meanwhile: then that loss is counted).
            try input.writeAll("go\n".utf8)
            try input.close()
            #expect(await shell.wait() == .exited(code: 0))
            drain(loop)
            let atEnd = await counters(monitor)
            #expect(atEnd.descendantEventLosses >= 1)
            if reportsOverruns {
                #expect(
                    atEnd.descendantsStarted == afterBurst.descendantsStarted + cpus || atEnd.descendantEventLosses > 1,
                    "\(afterBurst) then \(atEnd)")
            }
            monitor.stop()
            var lostEvents = 0
            for await event in events where event == .descendantEventsLost { lostEvents += 1 }
            #expect(lostEvents == 1)
            try shell.standardOutput!.close()
        }
    }

    /// Runs the loop's handlers for what is ready: the kernel queued every
    /// event of a fork or exit before the caller could see it happen.
    private static func drain(_ loop: EventLoop) {
        for _ in 0..<64 { loop.runOnce(timeoutMilliseconds: 0) }
    }

    private static func counters(_ monitor: JobEventMonitor) async -> JobEventCounters {
        var iterator = monitor.subscribe().makeAsyncIterator()
        guard case .subscribed(let counters)? = await iterator.next() else { return JobEventCounters() }
        return counters
    }
}
