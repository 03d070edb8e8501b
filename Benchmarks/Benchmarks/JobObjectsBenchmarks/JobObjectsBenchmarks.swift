// The package-benchmark suite: the library's spawn, signal, teardown and
// event paths, each with a reference measured in the same run, and
// thresholds (Thresholds/, p90 with the tolerances below) so a regression
// shows when the suite is re-run:
//
//   swift package --scratch-path .build-bench benchmark thresholds check
//
// Names have no spaces or slashes: package-benchmark 1.38 writes threshold
// files with those replaced by "_" but looks them up by the plain name.
//
// Set JOBOBJECTS_BENCH_SMOKE=1 to run every benchmark once, briefly
// (scripts/bench-smoke does). The side-by-side comparison with the C floors,
// Foundation's Process and swift-subprocess is jobobjects-compare
// (scripts/bench → BENCHMARKS.md).
import Benchmark
import BenchSupport
import Glibc
import JobObjects

let smoke = getenv("JOBOBJECTS_BENCH_SMOKE").map { String(cString: $0) == "1" } ?? false

/// Wall-clock tolerance at p90: this runs on small shared machines, where
/// ±30% between runs is weather, not a regression.
var wallClockTolerance: BenchmarkThresholds { BenchmarkThresholds(relative: [.p90: 35.0]) }

func configuration(
    metrics: [BenchmarkMetric] = [.wallClock],
    maxIterations: Int = 1000,
    maxDuration: Duration = .seconds(2),
    thresholds: [BenchmarkMetric: BenchmarkThresholds]? = nil,
    skip: Bool = false
) -> Benchmark.Configuration {
    var thresholdsByMetric: [BenchmarkMetric: BenchmarkThresholds] = [:]
    for metric in metrics where metric == .wallClock { thresholdsByMetric[metric] = wallClockTolerance }
    for (metric, tolerance) in thresholds ?? [:] { thresholdsByMetric[metric] = tolerance }
    return .init(
        metrics: metrics,
        timeUnits: .microseconds,
        warmupIterations: smoke ? 0 : 3,
        maxDuration: smoke ? .milliseconds(1) : maxDuration,
        maxIterations: smoke ? 1 : maxIterations,
        skip: skip,
        thresholds: thresholdsByMetric)
}

/// A job shared by the benchmarks that spawn, created on first use.
final class SharedJob: @unchecked Sendable {
    private var job: JobObject?
    func get() throws -> JobObject {
        if let job { return job }
        let made = try JobObject.create(name: Workloads.uniqueJobName("bench-suite"))
        job = made
        return made
    }
    func close() async throws {
        try await job?.close()
        job = nil
    }
}

/// Small teardowns wait for the kernel's rate-limited cgroup.events
/// notification (at most one per file every 10 ms), so they land either
/// near 2 ms or near 10–15 ms: judged with an absolute 12 ms margin instead.
var rateLimitedTolerance: BenchmarkThresholds { BenchmarkThresholds(absolute: [.p90: 12_000_000]) }

let exitToWait = BenchmarkMetric.custom("exit → wait() (ns)", polarity: .prefersSmaller, useScalingFactor: false)
let exitToEvent = BenchmarkMetric.custom("exit → job.events (ns)", polarity: .prefersSmaller, useScalingFactor: false)
let oomToEvent = BenchmarkMetric.custom("OOM kill → job.events (ns)", polarity: .prefersSmaller, useScalingFactor: false)
var eventTolerance: BenchmarkThresholds { BenchmarkThresholds(relative: [.p90: 50.0], absolute: [.p90: 200_000]) }

let benchmarks: @Sendable () -> Void = {
    let shared = SharedJob()
    let trueOptions = SpawnOptions(Workloads.trueProgram)

    // MARK: 1. spawn + wait

    Benchmark(
        "Spawn-JobObjects",
        configuration: configuration(
            metrics: [.wallClock, .mallocCountTotal],
            thresholds: [.mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 8])])
    ) { benchmark in
        let job = try shared.get()
        for _ in benchmark.scaledIterations { _ = try await SpawnWait.jobObjects(job, trueOptions) }
    }

    Benchmark("Spawn-posix_spawn-reference", configuration: configuration()) { benchmark in
        for _ in benchmark.scaledIterations { _ = try SpawnWait.posixSpawn(Workloads.trueProgram) }
    }

    Benchmark("Spawn-swift-subprocess-reference", configuration: configuration()) { benchmark in
        for _ in benchmark.scaledIterations { _ = try await SpawnWait.subprocess(Workloads.trueProgram) }
    }

    Benchmark("Spawn-Foundation-Process-reference", configuration: configuration(maxIterations: 100)) { benchmark in
        for _ in benchmark.scaledIterations { _ = try SpawnWait.foundation(Workloads.trueProgram) }
    }

    // MARK: 2. spawn latency from a big parent

    let bigParent = smoke ? 256 << 20 : 2 << 30
    Benchmark(
        "Spawn-JobObjects-\(bigParent >> 20)MiB-parent",
        configuration: configuration()
    ) { benchmark, ballast in
        let job = try shared.get()
        for _ in benchmark.scaledIterations { _ = try await SpawnWait.jobObjects(job, trueOptions) }
        withExtendedLifetime(ballast) {}
    } setup: {
        try MemoryBallast(targetResidentBytes: bigParent)
    }

    // MARK: 3. signal round trip

    let echo = SharedEcho()
    Benchmark("Signal-ProcessHandle.signal", configuration: configuration(maxIterations: 5000)) { benchmark in
        let trip = try await echo.get()
        for _ in benchmark.scaledIterations { _ = try trip.viaProcessHandle() }
    }
    Benchmark("Signal-job.signal", configuration: configuration(maxIterations: 5000)) { benchmark in
        let trip = try await echo.get()
        for _ in benchmark.scaledIterations { _ = try trip.viaJob() }
    }
    Benchmark("Signal-kill-reference", configuration: configuration(maxIterations: 5000)) { benchmark in
        let trip = try await echo.get()
        for _ in benchmark.scaledIterations { _ = try trip.viaKill() }
    }

    // MARK: 4. teardown

    for size in smoke ? [1, 10] : [1, 10, 100, 1000] {
        Benchmark(
            "Teardown-close-\(size)-sleepers",
            configuration: configuration(
                maxIterations: size >= 1000 ? 10 : size >= 100 ? 30 : 200,
                maxDuration: .seconds(size >= 100 ? 10 : 2),
                thresholds: size >= 1000 ? nil : [.wallClock: rateLimitedTolerance])
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                let filled = try await Teardown.fill(processes: size)
                benchmark.startMeasurement()
                try await filled.job.close()
                benchmark.stopMeasurement()
                for member in filled.members { _ = await member.wait() }
            }
        }
    }

    // MARK: 5. job create + close

    Benchmark("Lifecycle-create-close-empty", configuration: configuration()) { benchmark in
        for _ in benchmark.scaledIterations { _ = try await JobLifecycle.jobObjects() }
    }

    let limitsReason = JobLifecycle.limitsUnavailableReason()
    if let limitsReason { print("skipping Lifecycle-create-close-with-limits: \(limitsReason)") }
    Benchmark("Lifecycle-create-close-with-limits", configuration: configuration(skip: limitsReason != nil)) { benchmark in
        for _ in benchmark.scaledIterations { _ = try await JobLifecycle.jobObjectsWithLimits() }
    }

    // MARK: 6. event latency

    Benchmark(
        "Events-exit-to-wait",
        configuration: configuration(
            metrics: [exitToWait], maxIterations: 500,
            thresholds: [exitToWait: eventTolerance])
    ) { benchmark in
        let job = try shared.get()
        for _ in benchmark.scaledIterations {
            benchmark.measurement(exitToWait, Int(try await ExitEventLatency.jobObjects(job)))
        }
    }

    let events = SharedEventStream()
    Benchmark(
        "Events-exit-to-job.events",
        configuration: configuration(
            metrics: [exitToEvent], maxIterations: 500,
            thresholds: [exitToEvent: eventTolerance])
    ) { benchmark in
        let stream = try await events.get()
        for _ in benchmark.scaledIterations {
            benchmark.measurement(exitToEvent, Int(try await stream.next()))
        }
    }

    let oomReason = OutOfMemoryEvent.unavailableReason()
    if let oomReason { print("skipping Events-OOM-kill-to-job.events: \(oomReason)") }
    Benchmark(
        "Events-OOM-kill-to-job.events",
        configuration: configuration(metrics: [oomToEvent], maxIterations: 20, skip: oomReason != nil)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            benchmark.measurement(oomToEvent, Int(try await OutOfMemoryEvent.latency()))
        }
    }

    // MARK: 8. throughput

    let total = smoke ? 8 : 100
    Benchmark(
        "Throughput-\(total)-spawns-4-tasks",
        configuration: configuration(maxIterations: 50)
    ) { benchmark in
        let job = try shared.get()
        for _ in benchmark.scaledIterations { _ = try await Throughput.jobObjects(job, total: total, concurrency: 4) }
    }

    Benchmark.teardown = {
        try await echo.close()
        try await events.close()
        try await shared.close()
    }
}

/// The signal-echo member shared by the signal benchmarks.
final class SharedEcho: @unchecked Sendable {
    private var trip: SignalRoundTrip?
    func get() async throws -> SignalRoundTrip {
        if let trip { return trip }
        let made = try await SignalRoundTrip()
        trip = made
        return made
    }
    func close() async throws {
        try await trip?.close()
        trip = nil
    }
}

/// A job and its event stream, shared by the runs of the event benchmark.
final class SharedEventStream: @unchecked Sendable {
    private var stream: ExitEventStream?
    func get() async throws -> ExitEventStream {
        if let stream { return stream }
        let made = await ExitEventStream(job: try JobObject.create(name: Workloads.uniqueJobName("bench-suite-events")))
        stream = made
        return made
    }
    func close() async throws {
        try await stream?.job.close()
        stream = nil
    }
}
