import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import Testing

/// A scratch directory with a payload directory ("the image") in it, removed
/// by `remove()`. Files: bin/hello (reads a line, then prints its args, the
/// sandbox variable, its directory and data.txt), data.txt, and an empty
/// directory data/ for nested mounts.
struct PayloadFixture {
    let directory: String
    var payload: String { directory + "/payload" }
    var volume: String { directory + "/volume" }

    init() throws {
        var template = Array("/tmp/jobobjects-payload-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        directory = String(cString: made)
        let fm = FileManager.default
        // Readable by any user: payloads run as other users too.
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        try fm.createDirectory(atPath: payload + "/bin", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try fm.createDirectory(atPath: payload + "/data", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try fm.createDirectory(atPath: volume, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        guard fm.createFile(atPath: payload + "/data.txt", contents: Data("payload data\n".utf8), attributes: [.posixPermissions: 0o644]),
            fm.createFile(
                atPath: payload + "/bin/hello",
                contents: Data(
                    """
                    #!/bin/sh
                    read go
                    echo "args: $*"
                    echo "sandbox: $CONTAINER_SANDBOX_MOUNT_POINT"
                    echo "pwd: $(pwd)"
                    cat "$CONTAINER_SANDBOX_MOUNT_POINT/data.txt"

                    """.utf8), attributes: [.posixPermissions: 0o755])
        else { throw POSIXError(.EIO) }
    }

    /// Writes `text` to `name` in the scratch directory and returns its path.
    func write(_ name: String, _ text: String) -> String {
        let path = directory + "/" + name
        if !FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]) {
            Issue.record("cannot write \(path)")
        }
        return path
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Mount points in this process's mount namespace at or under `path`
/// (field 5 of /proc/self/mountinfo).
func mountPoints(under path: String) -> [String] {
    // Read to EOF in chunks: Foundation's one-shot read stops early on a
    // long /proc file (the VM has many mounts).
    guard case .success(let text) = FileContents.read("/proc/self/mountinfo") else { return [] }
    return text.split(separator: "\n").compactMap { line -> String? in
        let fields = line.split(separator: " ")
        guard fields.count > 4 else { return nil }
        let point = String(fields[4]).replacingOccurrences(of: "\\040", with: " ")
        return point == path || point.hasPrefix(path + "/") ? point : nil
    }
}

/// Runs a payload with stdout piped; returns what it printed and how it ended.
func runPayload(
    _ spec: PayloadSpec, stdin: String? = nil, options: Payload.RunOptions = Payload.RunOptions(),
    whileRunning: (Payload) async throws -> Void = { _ in }
) async throws -> (PayloadOutcome, String, Payload) {
    var options = options
    options.standardOutput = .pipe
    if stdin != nil { options.standardInput = .pipe }
    let payload = try await Payload.start(spec, options: options)
    async let output = PipeReader.readAll(payload.initProcess.standardOutput!)
    try await whileRunning(payload)
    if let stdin, let input = payload.initProcess.standardInput {
        try input.writeAll(stdin.utf8)
        try input.close()
    }
    let outcome = await payload.wait()
    let text = await output
    try payload.initProcess.standardOutput!.close()
    return (outcome, text, payload)
}

/// Checks that a payload left nothing: no cgroup, no storage directory, no
/// mount under it, no mount namespace held, no uid lock, no process of its
/// uid, and that every cleanup step worked. The uid checks hold because
/// each test allocates from its own range (`uniqueUIDRange`).
func expectPayloadLeftNothing(_ outcome: PayloadOutcome, _ payload: Payload? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcome.cleanedUp, "cleanup failed: \(outcome.failures)", sourceLocation: sourceLocation)
    expectPayloadStorageGone(name: outcome.name, jobPath: outcome.jobPath.string, uid: outcome.ephemeralUID, sourceLocation: sourceLocation)
    // In private mode the runner checked that no process holds the job's
    // mount namespace any more (a cleanup step), while it still held the
    // namespace's identity so that a recycled inode number cannot fool it.
    if payload?.mode == .privateNamespace {
        #expect(outcome.cleanup.contains { $0.action == .releaseMountNamespace && $0.succeeded }, sourceLocation: sourceLocation)
    }
    if let payload { #expect(isGone(payload.initProcess), sourceLocation: sourceLocation) }
}

func expectPayloadStorageGone(name: String, jobPath: String, uid: uid_t?, sourceLocation: SourceLocation = #_sourceLocation) {
    let root = "/run/jobobjects/" + name
    #expect(access(jobPath, F_OK) != 0, "cgroup \(jobPath) was left behind", sourceLocation: sourceLocation)
    #expect(access(root, F_OK) != 0, "storage \(root) was left behind", sourceLocation: sourceLocation)
    #expect(mountPoints(under: root).isEmpty, "mounts left under \(root): \(mountPoints(under: root))", sourceLocation: sourceLocation)
    if let uid {
        #expect(access("/run/jobobjects/.uids/\(uid)", F_OK) != 0, "uid lock \(uid) was left behind", sourceLocation: sourceLocation)
        #expect(!liveProcessUIDs().contains(uid), "a process of uid \(uid) was left behind", sourceLocation: sourceLocation)
    }
}

/// A spec from YAML, with relative paths resolved against `fixture`.
func payloadSpec(_ yaml: String, in fixture: PayloadFixture) throws -> PayloadSpec {
    try PayloadSpec.decode(yaml: yaml, file: "spec.yaml", baseDirectory: fixture.directory)
}

/// "key: value" lines of /proc/self/status as the payload printed them.
func statusFields(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
    }
    return fields
}

/// Requirements of the payload tests: root (mounts, uid switching). On the
/// host they are skipped without it; in the VM tier that is a failure.
enum PayloadTier {
    static var isRoot: Bool { Tier.isVM || geteuid() == 0 }
}

/// `text` as a YAML double-quoted scalar.
func yamlQuoted(_ text: String) -> String {
    var out = "\""
    for c in text {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default: out.append(c)
        }
    }
    return out + "\""
}

import Synchronization

private let nextUIDBlock = Atomic<UInt32>(0)

/// A block of 16 uids no other test of this process uses, for ephemeral
/// users: a uid released by one test may at once be taken by another (the
/// OCI runtime's ephemeral users come from the bottom of the default
/// range), so checks that a uid is free again need ranges of their own.
func uniqueUIDBlock() -> ClosedRange<UInt32> {
    let block = nextUIDBlock.add(1, ordering: .relaxed).newValue
    let first = PayloadSpec.EphemeralUser.defaultRange.lowerBound + 4096 + block * 16
    return first...(first + 15)
}

/// `uniqueUIDBlock()` as a payload spec writes it: "FIRST-LAST".
func uniqueUIDRange() -> String {
    let block = uniqueUIDBlock()
    return "\"\(block.lowerBound)-\(block.upperBound)\""
}

/// The uids of every process that has not exited. Zombies are left out: the
/// kernel has ended them, and reaping an orphan is its new parent's
/// business (init's, after an owner was SIGKILLed), which happens on its own time.
func liveProcessUIDs() -> Set<uid_t> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    var uids = Set<uid_t>()
    for name in names where name.first?.isNumber == true {
        guard case .success(let status) = FileContents.read("/proc/\(name)/status") else { continue }
        let fields = statusFields(status)
        if fields["State"]?.hasPrefix("Z") == true { continue }
        for uid in (fields["Uid"] ?? "").split(separator: "\t") { if let value = uid_t(uid) { uids.insert(value) } }
    }
    return uids
}

/// Tests that bind 127.0.0.1:80 take turns: two binds of the same port at
/// once would fail with EADDRINUSE whatever the capabilities.
actor Port80 {
    static let shared = Port80()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        }
        busy = true
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}

/// Makes a FIFO anyone may write, at `path`.
func makeFIFO(_ path: String) throws {
    guard mkfifo(path, 0o666) == 0, chmod(path, 0o666) == 0 else { throw POSIXError(.EIO) }
}

/// Opens the FIFO at `path` for reading — which returns once a writer has
/// opened it — and reads until every writer closed it. On its own thread:
/// both steps block.
func readFIFO(_ path: String) async -> String {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 256)
            while fd >= 0 {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                data += buffer[0..<n]
            }
            if fd >= 0 { close(fd) }
            continuation.resume(returning: String(decoding: data, as: UTF8.self))
        }
    }
}
