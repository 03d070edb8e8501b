import Glibc

/// A process named by its pid and its start time (field 22 of
/// /proc/PID/stat), so that a record written by one process is never taken
/// for a later process that got the same pid.
package struct ProcessIdentity: Sendable, Hashable, CustomStringConvertible {
    package var pid: pid_t
    package var startTime: UInt64

    /// This process.
    package static var current: ProcessIdentity { ProcessIdentity(pid: getpid())! }

    /// The process `pid` as it is now; nil when there is none.
    package init?(pid: pid_t) {
        guard let start = Self.startTime(of: pid) else { return nil }
        self.pid = pid
        startTime = start
    }

    package init(pid: pid_t, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// Whether the same process still exists (a zombie counts as gone).
    package var isAlive: Bool {
        guard let start = Self.startTime(of: pid), start == startTime else { return false }
        guard case .success(let stat) = FileContents.read("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].first
        return state != "Z" && state != "X"
    }

    /// Field 22 of /proc/PID/stat; the command name (field 2) may hold
    /// spaces and parentheses, so counting starts after its last ")".
    package static func startTime(of pid: pid_t) -> UInt64? {
        guard case .success(let stat) = FileContents.read("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    package var description: String { "\(pid) \(startTime)" }
}
