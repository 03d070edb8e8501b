import BenchSupport

/// One way of doing the thing a set measures.
struct Variant {
    var name: String
    var baseline: String?
    var series: String?
    var x: Double?
    var count: Int?
    /// Operations per round.
    var batch: Int
    /// A fresh process measures itself: its first sample is a cold start and is dropped.
    var dropFirst = false
    /// Runs `n` operations and returns one sample per operation.
    var run: (Int) async throws -> [UInt64]
}

/// Runs the variants of a set in rounds, A B C A B C …, rotating the order
/// each round so that none always goes first, after one unrecorded warm-up
/// operation of each. A variant that throws `Skip` is recorded as skipped;
/// any other error is a failure of that variant.
func interleave(_ variants: [Variant], rounds: Int, into set: inout SetResult) async {
    var results = variants.map {
        VariantResult(name: $0.name, baseline: $0.baseline, series: $0.series, x: $0.x, count: $0.count)
    }
    var active = Array(variants.indices)
    func drop(_ index: Int, _ error: Error, set: inout SetResult) {
        active.removeAll { $0 == index }
        if let skip = error as? Skip {
            set.skipped.append(SkippedVariant(name: variants[index].name, reason: skip.reason))
        } else {
            set.failures.append("\(variants[index].name): \(error)")
        }
    }
    for index in active {
        do { _ = try await variants[index].run(1) } catch { drop(index, error, set: &set) }
    }
    for round in 0..<rounds {
        let order = active.isEmpty ? [] : (0..<active.count).map { active[($0 + round) % active.count] }
        for index in order {
            let variant = variants[index]
            do {
                let samples = try await variant.run(variant.batch + (variant.dropFirst ? 1 : 0))
                results[index].samples += variant.dropFirst ? Array(samples.dropFirst()) : samples
            } catch {
                drop(index, error, set: &set)
            }
        }
    }
    set.variants += results.enumerated().filter { !$0.element.samples.isEmpty }.map(\.element)
}

/// `n` repetitions of a single measurement.
func repeated(_ n: Int, _ body: () async throws -> UInt64) async throws -> [UInt64] {
    var samples: [UInt64] = []
    samples.reserveCapacity(n)
    for _ in 0..<n { samples.append(try await body()) }
    return samples
}
