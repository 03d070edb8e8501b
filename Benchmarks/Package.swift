// swift-tools-version: 6.1
// The JobObjects benchmarks: a package of their own, like apple/swift-nio's
// Benchmarks/, so the library does not depend on package-benchmark,
// Foundation or swift-subprocess.
//
//   swift build -c release --scratch-path .build-bench      # harness, floors, payloads
//   swift package --scratch-path .build-bench benchmark     # the package-benchmark suite
//   ../scripts/bench                                        # the comparison → BENCHMARKS.md
import PackageDescription

/// A C program built from one directory's main.c.
func cProgram(_ name: String, _ path: String) -> Target {
    .executableTarget(name: name, path: path, cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-O2"])])
}

let package = Package(
    name: "JobObjectsBenchmarks",
    dependencies: [
        .package(name: "JobObjects", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // The package-benchmark suite (thresholds in Thresholds/).
        .executableTarget(
            name: "JobObjectsBenchmarks",
            dependencies: [
                "BenchSupport",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/JobObjectsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The interleaved side-by-side comparison behind BENCHMARKS.md.
        .executableTarget(name: "jobobjects-compare", dependencies: ["BenchSupport"], path: "Sources/Compare"),
        // The workloads, shared by the suite and the comparison.
        .target(
            name: "BenchSupport",
            dependencies: [
                "CBenchSupport",
                .product(name: "JobObjects", package: "JobObjects"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(name: "CBenchSupport", cSettings: [.define("_GNU_SOURCE")]),
        // Floors: what the kernel allows, in minimal C.
        cProgram("floor-posix-spawn", "Floors/posix-spawn-wait"),
        cProgram("floor-clone3", "Floors/clone3-wait"),
        cProgram("floor-cgroup-kill", "Floors/cgroup-kill"),
        // Payloads the job members run.
        cProgram("payload-signal-echo", "Payloads/signal-echo"),
        cProgram("payload-exit-stamp", "Payloads/exit-stamp"),
        cProgram("payload-memory-hog", "Payloads/memory-hog"),
    ],
    swiftLanguageModes: [.v6]
)
