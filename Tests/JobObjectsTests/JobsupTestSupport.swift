import Foundation
import Glibc
@testable import JobObjects
import SystemPackage
import Testing

/// Runs the built jobsup inside `job` (the test's own), without
/// JOBOBJECTS_CGROUP_PARENT, so that every job jobsup makes nests in the
/// test's job and the test's job being empty covers all of it.
enum Jobsup {
    struct Result {
        var status: JobObjects.ExitStatus
        var out: String
        var err: String
        var code: Int32 { status.shellStatus }
    }

    /// Starts jobsup with stdout and stderr piped.
    static func start(_ arguments: [String], in job: JobObject, configure: (inout SpawnOptions) -> Void = { _ in }) throws -> ProcessHandle
    {
        try spawnPiped(job, [jobsupPath] + arguments, stderr: true) {
            $0.standardInput = .null
            configure(&$0)
        }
    }

    /// Runs jobsup to the end.
    static func run(_ arguments: [String], in job: JobObject, configure: (inout SpawnOptions) -> Void = { _ in }) async throws -> Result {
        let process = try start(arguments, in: job, configure: configure)
        return await finish(process)
    }

    /// Reads the rest of both pipes, waits and closes them.
    static func finish(_ process: ProcessHandle) async -> Result {
        async let out = PipeReader.readAll(process.standardOutput!)
        async let err = PipeReader.readAll(process.standardError!)
        let result = Result(status: await process.wait(), out: await out, err: await err)
        try? process.standardOutput!.close()
        try? process.standardError!.close()
        return result
    }

    /// Reads one line (without its newline), on a thread of its own; nil at EOF.
    static func readLine(_ fd: FileDescriptor) async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var bytes = [UInt8]()
                var byte: UInt8 = 0
                while true {
                    let n = read(fd.rawValue, &byte, 1)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return continuation.resume(returning: bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)) }
                    if byte == UInt8(ascii: "\n") { return continuation.resume(returning: String(decoding: bytes, as: UTF8.self)) }
                    bytes.append(byte)
                }
            }
        }
    }

    /// Each line of `text` parsed as a JSON object.
    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").filter { $0.hasPrefix("{") }.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    static func jsonObject(_ text: Substring) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// The documented value type of a JSON field (docs/jobsup.md).
    enum FieldType { case int, intOrNull, string, bool }

    /// Checks that `object` has exactly the documented keys with their types.
    static func expectSchema(_ object: [String: Any], _ schema: [String: FieldType], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            Set(object.keys) == Set(schema.keys), "keys differ: \(Set(object.keys).symmetricDifference(schema.keys))",
            sourceLocation: sourceLocation)
        for (key, type) in schema {
            let value = object[key]
            let ok: Bool
            switch type {
            case .int: ok = value is Int
            case .intOrNull: ok = value is NSNull || value is Int
            case .string: ok = value is String
            case .bool: ok = value is Bool
            }
            #expect(ok, "\(key) is \(String(describing: value)), expected \(type)", sourceLocation: sourceLocation)
        }
    }

    /// The `--stats-format json` / `stats --format json` schema (docs/jobsup.md).
    static let statsSchema: [String: FieldType] = [
        "job": .string,
        "cpu_user_usec": .int, "cpu_system_usec": .int,
        "cpu_throttled_usec": .intOrNull, "cpu_throttled_periods": .intOrNull,
        "memory_current_bytes": .intOrNull, "memory_peak_bytes": .intOrNull, "swap_current_bytes": .intOrNull,
        "page_faults": .intOrNull, "major_page_faults": .intOrNull,
        "io_read_bytes": .intOrNull, "io_write_bytes": .intOrNull,
        "io_read_operations": .intOrNull, "io_write_operations": .intOrNull,
        "active_processes": .int, "active_threads": .int, "peak_processes": .intOrNull,
        "processes_started": .int, "processes_exited": .int, "abnormal_exits": .int,
        "out_of_memory_kills": .intOrNull, "memory_limit_reached": .intOrNull,
        "memory_high_crossed": .intOrNull, "process_limit_reached": .intOrNull,
    ]

    /// `run --stats` adds these.
    static let runStatsSchema = statsSchema.merging(["exit_status": .int, "signal": .intOrNull, "orphans_reaped": .int]) { a, _ in a }
}
