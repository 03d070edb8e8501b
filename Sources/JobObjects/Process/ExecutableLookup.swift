import Glibc

/// Resolves an executable name the way a shell would, in the parent, so the
/// child only calls execve and a missing program is a clear error.
enum ExecutableLookup {
    static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// `name` with a `/` is taken as a path (relative to `workingDirectory`
    /// when given); otherwise each directory of `searchPath` is tried.
    static func resolve(_ name: String, searchPath: String?, workingDirectory: String?) throws(JobObjectError) -> String {
        if name.isEmpty {
            throw JobObjectError(.executableNotFound, "no executable given", operation: "spawn")
        }
        if name.contains("/") {
            let path = (name.hasPrefix("/") || workingDirectory == nil) ? name : workingDirectory! + "/" + name
            if isExecutableFile(path) { return path }
            // It exists but cannot be run: a shell's 126, not 127.
            var info = stat()
            if stat(path, &info) == 0 {
                let why =
                    (info.st_mode & S_IFMT) == S_IFDIR
                    ? "\(path) is a directory, not a program" : "\(path) is not executable (no execute permission for this user)"
                throw JobObjectError(.spawnFailed, why, operation: "spawn", path: path)
            }
            throw JobObjectError(.executableNotFound, "no such executable: \(path)", operation: "spawn", path: path)
        }
        let directories = (searchPath ?? defaultSearchPath).split(separator: ":", omittingEmptySubsequences: false)
        for directory in directories {
            let path = (directory.isEmpty ? "." : String(directory)) + "/" + name
            if isExecutableFile(path) { return path }
        }
        throw JobObjectError(
            .executableNotFound,
            "\"\(name)\" was not found in PATH (\(searchPath ?? defaultSearchPath)); give a full path or install it",
            operation: "spawn")
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return Syscall.access(path, X_OK).isSuccess
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
