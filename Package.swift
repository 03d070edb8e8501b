// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "JobObjects",
    products: [
        .library(name: "JobObjects", targets: ["JobObjects"]),
        .executable(name: "jobsup", targets: ["Supervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Only what cannot be Swift: the code between clone and execve, the
        // owner-death watchdog, syscalls libc lacks. Links libcap/libseccomp.
        .target(
            name: "CJobShim",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("cap"), .linkedLibrary("seccomp")]
        ),
        // libyaml, through which payload specs and seccomp profiles are read
        // (Debian: libyaml-dev); no Foundation is linked into JobObjects.
        .systemLibrary(name: "CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .target(
            name: "JobObjects",
            dependencies: [
                "CJobShim",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                "CLibYAML",
            ]
        ),
        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "JobObjects",
                "CJobShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "JobObjectsTests",
            dependencies: ["JobObjects", "CJobShim", "Supervisor"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
