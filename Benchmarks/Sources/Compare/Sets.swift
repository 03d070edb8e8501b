import BenchSupport
import Glibc
import JobObjects

/// The comparison sets of issue 6, one function each.
struct Sets {
    let settings: Settings
    let parent: String

    // 1. spawn+wait /bin/true
    func spawn() async throws -> SetResult {
        var set = SetResult(id: "spawn", title: "spawn + wait /bin/true")
        let floor = "C posix_spawn + waitpid (floor)"
        let job = try JobObject.create(name: Workloads.uniqueJobName("bench-spawn"))
        let options = SpawnOptions(Workloads.trueProgram)
        let batch = settings.spawnBatch
        let parent = self.parent
        await interleave(
            [
                Variant(name: floor, baseline: floor, batch: batch, dropFirst: true) { n in
                    try HelperPrograms.samples(HelperPrograms.posixSpawnFloor, [parent, String(n)])
                },
                Variant(name: "C clone3(CLONE_INTO_CGROUP|CLONE_PIDFD) + waitid (floor)", baseline: floor, batch: batch, dropFirst: true) {
                    n in
                    try HelperPrograms.samples(HelperPrograms.clone3Floor, [parent, String(n)])
                },
                Variant(name: "JobObjects job.spawn + wait()", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try await SpawnWait.jobObjects(job, options) }
                },
                Variant(name: "posix_spawn + waitpid from this Swift process (no job)", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try SpawnWait.posixSpawn(Workloads.trueProgram) }
                },
                Variant(name: "Foundation Process run + waitUntilExit", baseline: floor, batch: settings.foundationBatch) { n in
                    try await repeated(n) { try SpawnWait.foundation(Workloads.trueProgram) }
                },
                Variant(name: "swift-subprocess run", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try await SpawnWait.subprocess(Workloads.trueProgram) }
                },
            ], rounds: settings.spawnRounds, into: &set)
        try await job.close()
        set.notes.append(
            "The C floors run as separate small processes that time themselves; their first spawn of each batch (a cold start) is dropped.")
        return set
    }

    // 2. spawn latency against parent memory
    func memory() async throws -> SetResult {
        var set = SetResult(
            id: "memory",
            title: "spawn + wait /bin/true, parent resident set \(settings.smallParent >> 20) MiB vs \(settings.bigParent >> 20) MiB")
        let job = try JobObject.create(name: Workloads.uniqueJobName("bench-memory"))
        let options = SpawnOptions(Workloads.trueProgram)
        let smallMiB = Double(settings.smallParent >> 20)
        let bigMiB = Double(settings.bigParent >> 20)
        let names = (
            smallJob: "JobObjects, \(Int(smallMiB)) MiB parent", bigJob: "JobObjects, \(Int(bigMiB)) MiB parent",
            smallSub: "swift-subprocess, \(Int(smallMiB)) MiB parent", bigSub: "swift-subprocess, \(Int(bigMiB)) MiB parent",
            smallFoundation: "Foundation Process, \(Int(smallMiB)) MiB parent",
            bigFoundation: "Foundation Process, \(Int(bigMiB)) MiB parent"
        )
        var results = [
            VariantResult(name: names.smallJob, baseline: names.smallJob, series: "JobObjects", x: smallMiB),
            VariantResult(name: names.bigJob, baseline: names.smallJob, series: "JobObjects", x: bigMiB),
            VariantResult(name: names.smallSub, baseline: names.smallSub, series: "swift-subprocess", x: smallMiB),
            VariantResult(name: names.bigSub, baseline: names.smallSub, series: "swift-subprocess", x: bigMiB),
            VariantResult(name: names.smallFoundation, baseline: names.smallFoundation, series: "Foundation Process", x: smallMiB),
            VariantResult(name: names.bigFoundation, baseline: names.smallFoundation, series: "Foundation Process", x: bigMiB),
        ]
        let batch = settings.memoryBatch
        let foundationBatch = max(1, batch / 4)
        var residentSmall: [Int] = []
        var residentBig: [Int] = []
        func measure(big: Bool) async throws {
            let offset = big ? 1 : 0
            residentSmall.append(0)
            if big {
                residentBig.append(MemoryBallast.residentBytes)
            } else {
                residentSmall[residentSmall.count - 1] = MemoryBallast.residentBytes
            }
            results[0 + offset].samples += try await repeated(batch) { try await SpawnWait.jobObjects(job, options) }
            results[2 + offset].samples += try await repeated(batch) { try await SpawnWait.subprocess(Workloads.trueProgram) }
            results[4 + offset].samples += try await repeated(foundationBatch) { try SpawnWait.foundation(Workloads.trueProgram) }
        }
        do {
            _ = try await SpawnWait.jobObjects(job, options)
            for round in 0..<settings.memoryRounds {
                for big in (round % 2 == 0 ? [false, true] : [true, false]) {
                    if big {
                        let ballast = try MemoryBallast(targetResidentBytes: settings.bigParent)
                        try await measure(big: true)
                        withExtendedLifetime(ballast) {}
                    } else {
                        let ballast = try MemoryBallast(targetResidentBytes: settings.smallParent)
                        try await measure(big: false)
                        withExtendedLifetime(ballast) {}
                    }
                }
            }
        } catch {
            set.failures.append("\(error)")
        }
        residentSmall.removeAll { $0 == 0 }
        let mib = { (bytes: [Int]) in bytes.isEmpty ? "?" : String((bytes.reduce(0, +) / bytes.count) >> 20) }
        for index in results.indices {
            results[index].extra["parent_rss_mib"] = index % 2 == 0 ? mib(residentSmall) : mib(residentBig)
        }
        set.variants = results.filter { !$0.samples.isEmpty }
        try await job.close()
        set.notes.append(
            "The big parent touches every page of an anonymous mapping with huge pages refused, so its page tables are as large as a real heap's."
        )
        return set
    }

    // 3. signal round trip
    func signal() async throws -> SetResult {
        var set = SetResult(id: "signal", title: "signal round trip: SIGUSR1 to a job member → its handler's byte read back")
        let echo = try await SignalRoundTrip()
        let floor = "kill(2) by pid (floor)"
        let batch = settings.signalBatch
        await interleave(
            [
                Variant(name: floor, baseline: floor, batch: batch) { n in try await repeated(n) { try echo.viaKill() } },
                Variant(name: "JobObjects ProcessHandle.signal", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try echo.viaProcessHandle() }
                },
                Variant(name: "JobObjects job.signal (whole job)", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try echo.viaJob() }
                },
            ], rounds: settings.signalRounds, into: &set)
        try await echo.close()
        return set
    }

    // 4. teardown against job size
    func teardown() async throws -> SetResult {
        var set = SetResult(id: "teardown", title: "teardown of a job of N sleeping processes until its cgroup is removed")
        let parent = self.parent
        for size in settings.teardownSizes {
            let floor = "C cgroup.kill + poll(populated 0) + rmdir (floor), N=\(size)"
            await interleave(
                [
                    Variant(name: floor, baseline: floor, series: "C cgroup.kill floor", x: Double(size), batch: 1) { _ in
                        [try Teardown.floor(processes: size, parent: parent)]
                    },
                    Variant(
                        name: "C cgroup.kill + wait for each child + rmdir (floor), N=\(size)", baseline: floor,
                        series: "C cgroup.kill, children waited for", x: Double(size), batch: 1
                    ) { _ in
                        [try Teardown.floor(processes: size, parent: parent, waitingForChildren: true)]
                    },
                    Variant(
                        name: "JobObjects job.close(), N=\(size)", baseline: floor, series: "JobObjects close()", x: Double(size), batch: 1
                    ) { _ in
                        let filled = try await Teardown.fill(processes: size)
                        return [try await Teardown.close(filled)]
                    },
                ], rounds: settings.teardownRounds(size), into: &set)
        }
        set.notes.append("Filling the job (spawning N × /bin/sleep) is not timed; neither is reaping the killed processes.")
        return set
    }

    // 5. job create + close
    func lifecycle() async throws -> SetResult {
        var set = SetResult(id: "lifecycle", title: "job create + close, no process")
        let floor = "mkdir + rmdir of a cgroup (floor)"
        let parent = self.parent
        let batch = settings.lifecycleBatch
        await interleave(
            [
                Variant(name: floor, baseline: floor, batch: batch) { n in
                    try await repeated(n) { try JobLifecycle.rawMkdirRmdir(parent: parent) }
                },
                Variant(name: "JobObjects create + close", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try await JobLifecycle.jobObjects() }
                },
                Variant(name: "JobObjects create(limits: memory.max, pids.max) + close", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try await JobLifecycle.jobObjectsWithLimits() }
                },
            ], rounds: settings.lifecycleRounds, into: &set)
        return set
    }

    // 6. event latency
    func exitEvent() async throws -> SetResult {
        var set = SetResult(id: "exit-event", title: "process exit → the waiter knows (exit stamped by the payload)")
        let job = try JobObject.create(name: Workloads.uniqueJobName("bench-exit"))
        let streamJob = try JobObject.create(name: Workloads.uniqueJobName("bench-exit-events"))
        let stream = await ExitEventStream(job: streamJob)
        let floor = "poll(pidfd) + waitid in the waiting thread (floor)"
        let batch = settings.exitBatch
        await interleave(
            [
                Variant(name: floor, baseline: floor, batch: batch) { n in try await repeated(n) { try ExitEventLatency.rawPidfd() } },
                Variant(name: "JobObjects ProcessHandle.wait()", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try await ExitEventLatency.jobObjects(job) }
                },
                Variant(name: "JobObjects job.events .processExited", baseline: floor, batch: batch) { n in
                    try await repeated(n) { try await stream.next() }
                },
            ], rounds: settings.exitRounds, into: &set)
        try await job.close()
        try await streamJob.close()
        var oom = SetResult(id: "oom", title: "")
        await interleave(
            [
                Variant(name: "OOM kill → job.events .outOfMemoryKill", batch: settings.smoke ? 1 : 5) { n in
                    try await repeated(n) { try await OutOfMemoryEvent.latency() }
                }
            ], rounds: settings.exitRounds, into: &oom)
        set.variants += oom.variants
        set.skipped += oom.skipped
        set.failures += oom.failures
        return set
    }

    // 8. throughput
    func throughput() async throws -> SetResult {
        var set = SetResult(
            id: "throughput", title: "throughput: \(settings.throughputTotal) × spawn + wait /bin/true from concurrent tasks", kind: "batch"
        )
        let total = settings.throughputTotal
        let job = try JobObject.create(name: Workloads.uniqueJobName("bench-throughput"))
        let floor = "C posix_spawn + waitpid floor, sequential"
        let parent = self.parent
        var variants = [
            Variant(name: floor, baseline: floor, series: "C floor", x: 1, count: total, batch: 1) { _ in
                let samples = try HelperPrograms.samples(HelperPrograms.posixSpawnFloor, [parent, String(total)])
                return [samples.reduce(0, +)]
            }
        ]
        for concurrency in settings.throughputConcurrency {
            variants.append(
                Variant(
                    name: "JobObjects, \(concurrency) task\(concurrency == 1 ? "" : "s")", baseline: floor,
                    series: "JobObjects", x: Double(concurrency), count: total, batch: 1
                ) { _ in
                    [try await Throughput.jobObjects(job, total: total, concurrency: concurrency)]
                })
            variants.append(
                Variant(
                    name: "swift-subprocess, \(concurrency) task\(concurrency == 1 ? "" : "s")", baseline: floor,
                    series: "swift-subprocess", x: Double(concurrency), count: total, batch: 1
                ) { _ in
                    [try await Throughput.subprocess(total: total, concurrency: concurrency)]
                })
        }
        await interleave(variants, rounds: settings.throughputRounds, into: &set)
        try await job.close()
        set.notes.append("The floor is one C process spawning sequentially; its time is the sum of its per-spawn times.")
        return set
    }
}
