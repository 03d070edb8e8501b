import Glibc
import JobObjects

/// jobsup's messages to the operator, on stderr, and its output on stdout,
/// written with write(2): no Foundation, no stdio buffering to flush.
enum Diagnostics {
    static func warn(_ message: String) {
        write(2, "jobsup: " + message + "\n")
    }

    /// Reports `error` and exits with `status` (default: as `jobsup run` maps it).
    static func fail(_ error: JobObjectError, status: Int32? = nil) -> Never {
        warn("error: \(error)")
        // Nothing of jobsup may outlive it, not even its idle watchdog, or
        // the cgroups it made for a run that failed.
        JobObject.stopWatchdogIfIdle()
        JobParent.undoSetUp()
        Glibc.exit(status ?? SupervisorExit.status(for: error))
    }

    /// A line on stdout.
    static func output(_ text: String) {
        write(1, text + "\n")
    }

    /// Writes all of `text` to `fd`, retrying short writes and EINTR.
    static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
