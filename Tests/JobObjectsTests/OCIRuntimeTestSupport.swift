import Foundation
import Glibc
@testable import JobObjects
import SystemPackage
import Testing

/// The built jobsup driven as `jobsup-runc` (argv[0]), as an engine drives
/// it: each command a process of its own, in the test's job and in the
/// caller's cgroup namespace (the runtime makes containers beside that job,
/// under the test's job parent, in a level of their own that the test
/// checks is gone at the end). State, bundles and output live in a temp
/// directory the payload's users can traverse.
struct OCIRuntimeHarness {
    let job: JobObject
    let directory: String
    let root: String
    /// linux.cgroupsPath of the level containers go in, and its directory.
    let cgroupLevel: String
    let cgroupLevelPath: String

    init(job: JobObject) throws {
        self.job = job
        directory = NSTemporaryDirectory() + "jobsup-runc-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o711)
        root = directory + "/state"
        let mount = try CgroupHierarchy.discover().mountPoint.string
        let parent = job.path.removingLastComponent().string
        cgroupLevel = String(parent.dropFirst(mount.count)) + "/oci-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        cgroupLevelPath = mount + cgroupLevel
    }

    /// Runs a command that starts no container process, to its end; its
    /// standard input is `input`'s contents when given.
    func run(_ arguments: [String], input: String? = nil) async throws -> Jobsup.Result {
        let inputFile = try input.map { try FileDescriptor.open(FilePath($0), .readOnly, options: .closeOnExec) }
        defer { try? inputFile?.close() }
        return try await Jobsup.run(["--root", root] + arguments, in: job) {
            $0.argument0 = "jobsup-runc"
            $0.cgroupNamespace = false
            if let inputFile { $0.standardInput = .fileDescriptor(inputFile) }
        }
    }

    /// `create`, whose stdio becomes the container's: both go to
    /// `bundle/output`, so the test reads the payload's output and create's
    /// errors there (a pipe would stay open as long as the container).
    func create(
        _ id: String, bundle: String, extra: [String] = [], globals: [String] = []
    ) async throws -> (
        code: Int32, output: String
    ) {
        let output = try FileDescriptor.open(
            bundle + "/output", .writeOnly, options: [.create, .append, .closeOnExec], permissions: [.ownerReadWrite, .otherReadWrite])
        defer { try? output.close() }
        let arguments =
            globals + ["--root", root, "--log", bundle + "/log", "--log-format", "json", "create"] + extra
            + ["--bundle", bundle, "--pid-file", bundle + "/pid", id]
        let status = try await spawnRuntime(arguments, output: output).wait()
        return (status.shellStatus, (try? String(contentsOfFile: bundle + "/output", encoding: .utf8)) ?? "")
    }

    /// Starts a command that runs on (such as `events`), its standard output
    /// and error going to `outputFile`.
    func start(_ arguments: [String], outputFile: String) throws -> ProcessHandle {
        let output = try FileDescriptor.open(
            outputFile, .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
        defer { try? output.close() }
        return try spawnRuntime(["--root", root] + arguments, output: output)
    }

    /// jobsup as `jobsup-runc` in the test's job and cgroup namespace, its
    /// standard output and error to `output`.
    private func spawnRuntime(_ arguments: [String], output: FileDescriptor) throws -> ProcessHandle {
        var options = SpawnOptions(jobsupPath, arguments: arguments)
        options.argument0 = "jobsup-runc"
        options.cgroupNamespace = false
        options.environment = .inheritUpdating([JobParent.environmentVariable: nil])
        options.standardInput = .null
        options.standardOutput = .fileDescriptor(output)
        options.standardError = .fileDescriptor(output)
        return try job.spawn(options)
    }

    /// A bundle: `rootfs/` (with a marker file) and a config.json running
    /// `sh -c script` as `uid`, with `linux` entries beyond the defaults.
    func bundle(
        _ name: String, script: String, uid: Int = 0, linux: String = "", annotations: String = "", process: String = ""
    ) throws -> String {
        let bundle = directory + "/" + name
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
        try "payload file\n".write(toFile: bundle + "/rootfs/marker", atomically: true, encoding: .utf8)
        chmod(bundle, 0o777)
        let config = """
            {"ociVersion": "1.0.2",
             "process": {"args": ["sh", "-c", \(jsonQuoted(script))], "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OUT=\(bundle)"],
                         "cwd": "/", "user": {"uid": \(uid), "gid": \(uid)}\(process)},
             "root": {"path": "rootfs"},
             "linux": {"namespaces": [{"type": "mount"}, {"type": "cgroup"}], "cgroupsPath": "\(cgroupLevel)/\(name)"\(linux)},
             "annotations": {"io.example/test": "yes"\(annotations)}}
            """
        try config.write(toFile: bundle + "/config.json", atomically: true, encoding: .utf8)
        return bundle
    }

    /// The container's status, from `state`.
    func status(_ id: String) async throws -> String {
        let state = try await run(["state", id])
        return state.out.firstMatch(of: /"status":"([a-z]+)"/).map { String($0.1) } ?? "(no status: \(state.err))"
    }

    /// Whether `state` reports `status` within five minutes (a hang bound).
    func reaches(_ id: String, _ status: String) async throws -> Bool {
        for _ in 0..<3000 {
            if try await self.status(id) == status { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Nothing of the runtime's is left: no state, no cgroup level.
    func expectNothingLeft(sourceLocation: SourceLocation = #_sourceLocation) {
        let states = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        #expect(states.isEmpty, "state left: \(states)", sourceLocation: sourceLocation)
        #expect(access(cgroupLevelPath, F_OK) != 0, "cgroup level left: \(cgroupLevelPath)", sourceLocation: sourceLocation)
    }

    func removeDirectory() { try? FileManager.default.removeItem(atPath: directory) }
}

/// `text` as a JSON string.
func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// The engine's end of `--console-socket`: a listening Unix socket that
/// receives a terminal's controller end in an `SCM_RIGHTS` message, as the
/// containerd shim and conmon do.
struct ConsoleSocketListener {
    let path: String
    private let socket: Int32

    init(path: String) throws {
        self.path = path
        socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(socket >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(socket, 4) == 0, "bind \(path): \(errno)")
    }

    /// The controller end from the next connection (within a minute).
    func receiveTerminal() throws -> FileDescriptor {
        var ready = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        try #require(poll(&ready, 1, 60_000) == 1, "no connection on the console socket")
        let connection = accept(socket, nil, nil)
        try #require(connection >= 0)
        defer { Glibc.close(connection) }
        var data = [UInt8](repeating: 0, count: 256)
        var control = [UInt8](repeating: 0, count: 64)
        let received = data.withUnsafeMutableBytes { dataBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    return recvmsg(connection, &message, Int32(MSG_CMSG_CLOEXEC))
                }
            }
        }
        try #require(received > 0)
        let header = control.withUnsafeBytes { $0.load(as: cmsghdr.self) }
        try #require(header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS))
        return FileDescriptor(rawValue: control.withUnsafeBytes { $0.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self) })
    }

    /// Everything the terminal shows until its last user closes it.
    static func readAll(_ controller: FileDescriptor) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(controller.rawValue, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // EIO: no process holds the terminal any more
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func close() {
        Glibc.close(socket)
        unlink(path)
    }
}
