import Glibc

/// A failure of a runtime command, said once on stderr and, as runc says
/// it, in the `--log` file (JSON lines with `--log-format json`: the
/// containerd shim and conmon report the last error line they find).
struct OCIRuntimeError: Error {
    let message: String

    init(_ message: String) { self.message = message }
}

/// Where the runtime's messages go: `--log FILE` in `--log-format` (text
/// or json), and stderr.
struct OCIRuntimeLog {
    var path: String?
    var json = false
    var debug = false

    func error(_ message: String) {
        Diagnostics.write(2, "jobsup-runc: \(message)\n")
        write(level: "error", message)
    }

    func debug(_ message: String) {
        if debug { write(level: "debug", message) }
    }

    private func write(level: String, _ message: String) {
        guard let path else { return }
        let time = Self.timestamp()
        let line: String
        if json {
            var object = JSONObject()
            object.add("level", level)
            object.add("msg", message)
            object.add("time", time)
            line = object.text + "\n"
        } else {
            line = "time=\"\(time)\" level=\(level) msg=\(JSONObject.quoted(message))\n"
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        Diagnostics.write(fd, line)
        close(fd)
    }

    /// RFC 3339 in UTC, as the state's `created` and the log lines use.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let nanos = String(now.tv_nsec)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(String(repeating: "0", count: 9 - nanos.count))\(nanos)Z"
    }
}
