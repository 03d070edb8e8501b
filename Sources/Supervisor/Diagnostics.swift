import Glibc
import JobObjects

/// jobsup's messages to the operator, on stderr.
enum Diagnostics {
    static func warn(_ message: String) {
        var line = "jobsup: " + message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func fail(_ error: JobObjectError) -> Never {
        warn("error: \(error)")
        Glibc.exit(SupervisorExit.status(for: error))
    }
}
