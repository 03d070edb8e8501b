import Foundation
import JobObjects
import Testing

/// The examples in Examples/, built with the package: what they link and
/// that they work.
@Suite("examples")
struct ExamplesTests {
    /// A program on JobObjects alone links no payload library.
    @Test func runInJobLinksOnlyTheCoreLibrary() async throws {
        let binary = try #require(builtExecutable("run-in-job"), "run-in-job is built with the tests")
        let needed = try await dynamicLibraries(of: binary)
        #expect(needed.contains { $0.hasPrefix("libc.so") })
        for library in ["libcap", "libseccomp", "libyaml"] {
            #expect(!needed.contains { $0.hasPrefix(library) }, "run-in-job links \(library): \(needed)")
        }
        // The payload example does link them: the check above can fail.
        let payload = try await dynamicLibraries(of: try #require(builtExecutable("run-payload")))
        #expect(payload.contains { $0.hasPrefix("libseccomp") } && payload.contains { $0.hasPrefix("libcap") })
    }

    @Test func runInJobRunsACommandAndCollectsItsOutput() async throws {
        let binary = try #require(builtExecutable("run-in-job"))
        let plain = try await run(binary, ["--", "/bin/sh", "-c", "echo hello; exit 3"])
        #expect(plain.status == 3)
        #expect(plain.output.hasPrefix("hello\n/bin/sh: exited with code 3; 1 process(es) started"))
        let collected = try await run(binary, ["--collect", "--", "/bin/echo", "collected"])
        #expect(collected.status == 0)
        #expect(collected.output.hasPrefix("stdout: collected\n/bin/echo: exited with code 0"))
        let usage = try await run(binary, ["/bin/true"])
        #expect(usage.status == 2 && usage.output.hasPrefix("usage: run-in-job"))
    }
}

/// The NEEDED entries of an ELF file's dynamic section (readelf -d).
private func dynamicLibraries(of path: String) async throws -> [String] {
    let result = try await run("/usr/bin/readelf", ["-d", path])
    return result.output.split(separator: "\n").compactMap { line in
        guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
        return String(line[line.index(after: open)..<close])
    }
}

/// Runs a program in a job of its own (through the library, whose child
/// subreaper never takes its statuses) and collects its output. Jobs it
/// makes nest in that job (see `spawnPiped`).
private func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await withJobObject(name: uniqueJobName()) { job async throws in
        var options = SpawnOptions(executable, arguments: arguments)
        options.environment = .inheritUpdating([JobParent.environmentVariable: nil])
        options.standardInput = .null
        let result = try await job.run(options)
        return (result.status.shellStatus, result.standardOutputText)
    }
}
