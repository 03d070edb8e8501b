import Glibc
import JobObjects

/// The `--stats` summary, human or JSON, on stderr.
struct StatsReport {
    let outcome: Supervisor.Outcome
    let format: StatsFormat

    init(_ outcome: Supervisor.Outcome, format: StatsFormat) {
        self.outcome = outcome
        self.format = format
    }

    func print() {
        let text = format == .json ? json : human
        var line = text + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    private var human: String {
        var lines = ["job \(outcome.job.name): init \(outcome.initStatus)"]
        if let a = outcome.accounting {
            lines.append("  cpu user:   \(Self.seconds(a.userTime)) s")
            lines.append("  cpu system: \(Self.seconds(a.systemTime)) s")
            lines.append("  processes started by jobsup: \(a.processesStarted)")
        }
        lines.append("  orphans reaped: \(outcome.orphansReaped)")
        return lines.joined(separator: "\n")
    }

    private var json: String {
        var fields = [
            "\"job\":\(Self.quoted(outcome.job.name.value))",
            "\"exit_status\":\(outcome.initStatus.shellStatus)",
            "\"orphans_reaped\":\(outcome.orphansReaped)",
        ]
        if let a = outcome.accounting {
            fields.append("\"cpu_user_usec\":\(Self.micros(a.userTime))")
            fields.append("\"cpu_system_usec\":\(Self.micros(a.systemTime))")
            fields.append("\"processes_started\":\(a.processesStarted)")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func micros(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    static func seconds(_ d: Duration) -> String {
        let us = micros(d)
        let fraction = String(us % 1_000_000)
        return "\(us / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
