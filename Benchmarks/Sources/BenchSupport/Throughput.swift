import JobObjects

/// `total` spawn+wait of /bin/true spread over `concurrency` tasks; each
/// returns the wall time of the whole batch in nanoseconds.
public enum Throughput {
    public static func jobObjects(_ job: JobObject, total: Int, concurrency: Int) async throws -> UInt64 {
        let options = SpawnOptions(Workloads.trueProgram)
        let start = MonotonicClock.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                let share = Throughput.share(of: total, worker: worker, concurrency: concurrency)
                group.addTask {
                    for _ in 0..<share { _ = try await SpawnWait.jobObjects(job, options) }
                }
            }
            try await group.waitForAll()
        }
        return MonotonicClock.now() - start
    }

    public static func subprocess(total: Int, concurrency: Int) async throws -> UInt64 {
        let start = MonotonicClock.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                let share = Throughput.share(of: total, worker: worker, concurrency: concurrency)
                group.addTask {
                    for _ in 0..<share { _ = try await SpawnWait.subprocess(Workloads.trueProgram) }
                }
            }
            try await group.waitForAll()
        }
        return MonotonicClock.now() - start
    }

    /// Worker `worker`'s part of `total` operations split over `concurrency` workers.
    static func share(of total: Int, worker: Int, concurrency: Int) -> Int {
        let base: Int = total / concurrency
        let remainder: Int = total % concurrency
        return worker < remainder ? base + 1 : base
    }
}
