// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "JobObjects",
    products: [
        .library(name: "JobObjects", targets: ["JobObjects"]),
        .library(name: "JobObjectsPayload", targets: ["JobObjectsPayload"]),
        .executable(name: "jobsup", targets: ["Supervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Only what cannot be Swift: the code between clone and execve, the
        // owner-death watchdog's loop, syscalls libc lacks. Links only libc.
        .target(
            name: "CJobShim",
            cSettings: [.define("_GNU_SOURCE"), .headerSearchPath("internal")]
        ),
        // Job objects: cgroups, jobs, limits, events, processes.
        .target(
            name: "JobObjects",
            dependencies: [
                "CJobShim",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The payload's C: the janitor, libcap names, libseccomp compilation.
        .target(
            name: "CJobShimPayload",
            dependencies: ["CJobShim"],
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("cap"), .linkedLibrary("seccomp")]
        ),
        // libyaml, through which payload specs and seccomp profiles are read
        // (Debian: libyaml-dev); no Foundation is linked.
        .systemLibrary(name: "CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // HostProcess-style payloads on top of job objects: identity,
        // capabilities, seccomp, storage, specs.
        .target(
            name: "JobObjectsPayload",
            dependencies: [
                "JobObjects",
                "CJobShim",
                "CJobShimPayload",
                "CLibYAML",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "JobObjects",
                "JobObjectsPayload",
                "CJobShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Examples, built with the package and used by the tests: a program
        // on JobObjects alone, and one that runs a payload spec.
        .executableTarget(name: "run-in-job", dependencies: ["JobObjects"], path: "Examples/RunInJob"),
        .executableTarget(
            name: "run-payload",
            dependencies: ["JobObjects", "JobObjectsPayload", .product(name: "SystemPackage", package: "swift-system")],
            path: "Examples/RunPayload"),
        .testTarget(
            name: "JobObjectsTests",
            dependencies: ["JobObjects", "JobObjectsPayload", "CJobShim", "CJobShimPayload", "Supervisor", "run-in-job", "run-payload"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
