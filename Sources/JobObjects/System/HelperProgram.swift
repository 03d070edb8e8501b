import Glibc
import SystemPackage

/// Runs a short-lived system program (such as `busctl`) to completion and
/// collects what it printed: for the few steps the library hands to a tool
/// of the machine's own rather than speaking a protocol itself.
///
/// Synchronous, and never in a job. The child is registered with
/// `ProcessRegistry` so that a child subreaper in this process leaves its
/// exit status to `run`.
struct HelperProgram {
    /// How it ended: the exit code, or nil when a signal ended it.
    let exitCode: CInt?
    /// Standard output and standard error, interleaved as written, at most `outputLimit` bytes.
    let output: String

    static let outputLimit = 64 << 10

    /// Runs `executable` (an absolute path) with `arguments` and `environment`
    /// added to this process's own.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:]
    )
        -> Result<HelperProgram, Errno>
    {
        guard case .success(let pipe) = Syscall.pipe() else { return .failure(Errno(rawValue: errno)) }
        defer { Syscall.close(pipe.read) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, pipe.write, 2)
        var merged = environment
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "="), merged[String(text[..<equals])] == nil {
                merged[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            index += 1
        }
        let argv = [executable] + arguments
        let envp = merged.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = ProcessRegistry.shared.startChild(&pid) { pid in
            withCStrings(argv) { argvPointer in
                withCStrings(envp) { envpPointer in
                    let error = posix_spawn(&pid, executable, &actions, nil, argvPointer, envpPointer)
                    if error != 0 { errno = error }
                    return error == 0 ? 0 : -1
                }
            }
        }
        let spawnError = errno
        Syscall.close(pipe.write)
        guard rc == 0 else { return .failure(Errno(rawValue: spawnError)) }
        defer { ProcessRegistry.shared.remove(pid) }

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(pipe.read, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if output.count < outputLimit { output += buffer[0..<min(count, outputLimit - output.count)] }
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        return .success(
            HelperProgram(exitCode: exited ? (status >> 8) & 0xff : nil, output: String(decoding: output, as: UTF8.self)))
    }

    /// The first of `directories` that holds an executable `name`.
    static func find(_ name: String, in directories: [String] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) -> String? {
        directories.lazy.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }
}
