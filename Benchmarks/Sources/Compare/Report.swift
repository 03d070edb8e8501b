import Foundation

/// What `jobobjects-compare` writes: raw samples per variant, so the report
/// generator computes medians and ratios from the same numbers.
struct Report: Codable {
    var host: Host
    var sets: [SetResult] = []

    struct Host: Codable {
        var spawnPath: String
        var kernelFeatures: String
        var jobParent: String
        var controllers: [String]
        var cgroupKill: Bool?
        var smoke: Bool
    }
}

struct SetResult: Codable {
    /// "spawn", "memory", "signal", "teardown", "lifecycle", "exit-event", "throughput".
    var id: String
    var title: String
    /// "latency" (lower is better, per operation) or "batch" (wall time of
    /// `count` operations; shown as operations per second).
    var kind: String = "latency"
    var variants: [VariantResult] = []
    var skipped: [SkippedVariant] = []
    var failures: [String] = []
    var notes: [String] = []
}

struct VariantResult: Codable {
    var name: String
    /// Name of the variant in the same set this one is compared with (nil: none; itself: the baseline).
    var baseline: String?
    /// Groups variants for charts: the line a point belongs to, and its x value.
    var series: String?
    var x: Double?
    /// Operations per sample (batch kind).
    var count: Int?
    var samples: [UInt64] = []
    var extra: [String: String] = [:]
}

struct SkippedVariant: Codable {
    var name: String
    var reason: String
}
