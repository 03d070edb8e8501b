/// `jobsup run`'s command line, read without ArgumentParser.
///
/// ArgumentParser builds its model of every command by reflection, and each
/// first protocol-conformance check scans the conformance records of the
/// whole static binary: milliseconds, more than `jobsup run -- /bin/true`
/// may cost in all. This parser reads only well-formed command lines of the
/// common shapes (`--opt value`, `--opt=value`, flags, `--`, the command)
/// into a `RunRequest`. It returns nil for anything else — help, an unknown
/// option, a bad or missing value, an option given twice — and then
/// ArgumentParser parses the same command line and gives its usual error or
/// help, so both paths accept exactly the same command lines.
enum RunFastParser {
    /// Parses the arguments after `run`; nil leaves them to ArgumentParser.
    static func parse(_ arguments: ArraySlice<String>) -> RunRequest? {
        var request = RunRequest()
        var seen: Set<String> = []
        var rest = arguments[...]
        while let argument = rest.first {
            rest = rest.dropFirst()
            if argument == "--" {
                request.argv = Array(rest)
                return request
            }
            guard argument.hasPrefix("-") else {
                // The command, given without `--`.
                request.argv = [argument] + rest
                return request
            }
            let name: String, attached: String?
            // `--opt=value` only: what a short option with `=` means is left to ArgumentParser.
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                attached = String(argument[argument.index(after: equals)...])
            } else {
                name = argument
                attached = nil
            }
            if let set = flags[name] {
                guard attached == nil, seen.insert(name).inserted else { return nil }
                set(&request)
                continue
            }
            guard let option = options[name] else { return nil }
            let value: String
            if let attached {
                value = attached
            } else {
                guard let next = rest.first, !next.hasPrefix("-") else { return nil }
                value = next
                rest = rest.dropFirst()
            }
            guard option.repeatable || seen.insert(name).inserted else { return nil }
            guard option.set(&request, value) else { return nil }
        }
        return request
    }

    private typealias Flag = @Sendable (inout RunRequest) -> Void

    private static let flags: [String: Flag] = [
        "--signal-job": { $0.signalJob = true },
        "--stats": { $0.stats = true },
        "--oom-kill-group": { $0.limits.oomKillGroup = true },
        "--cpu-idle": { $0.limits.cpuIdle = true },
        "--reset-signals": { $0.signals.resetSignals = true },
    ]

    private struct Option: Sendable {
        var repeatable = false
        /// Stores the value; false when it is not one the option takes.
        var set: @Sendable (inout RunRequest, String) -> Bool
    }

    private static func text(_ path: WritableKeyPath<RunRequest, String?> & Sendable) -> Option {
        Option { request, value in
            request[keyPath: path] = value
            return true
        }
    }

    private static func limit(_ path: WritableKeyPath<LimitFlags, String?> & Sendable) -> Option {
        Option { request, value in
            request.limits[keyPath: path] = value
            return true
        }
    }

    private static func repeated(_ path: WritableKeyPath<RunRequest, [String]> & Sendable) -> Option {
        Option(repeatable: true) { request, value in
            request[keyPath: path].append(value)
            return true
        }
    }

    /// Every option of `RunCommand`, `SignalOptions` and `LimitOptions`, by the name
    /// ArgumentParser knows it by (JobsupCLITests checks both agree).
    private static let options: [String: Option] = [
        "--name": text(\.name),
        "--cgroup-parent": text(\.cgroupParent),
        "-f": text(\.file),
        "--events-file": text(\.eventsFile),
        "--grace": Option { request, value in
            guard let grace = DurationArgument(argument: value) else { return false }
            request.grace = grace
            return true
        },
        "--events": Option { request, value in
            guard let format = EventLines.Format(rawValue: value) else { return false }
            request.events = format
            return true
        },
        "--stats-format": Option { request, value in
            guard let format = OutputFormat(rawValue: value) else { return false }
            request.statsFormat = format
            return true
        },
        "--memory-max": limit(\.memoryMax),
        "--memory-high": limit(\.memoryHigh),
        "--memory-low": limit(\.memoryLow),
        "--memory-min": limit(\.memoryMin),
        "--swap-max": limit(\.swapMax),
        "--pids-max": limit(\.pidsMax),
        "--cpus": limit(\.cpus),
        "--cpu-percent": limit(\.cpuPercent),
        "--cpu-period": limit(\.cpuPeriod),
        "--cpu-weight": limit(\.cpuWeight),
        "--cpu-windows-weight": limit(\.cpuWindowsWeight),
        "--cpuset": limit(\.cpuset),
        "--cpuset-mems": limit(\.cpusetMems),
        "--io-max": repeated(\.limits.ioMax),
        "--io-weight": limit(\.ioWeight),
        "--rlimit": repeated(\.limits.rlimit),
        "--cpu-time": limit(\.cpuTime),
        "--cpu-time-action": limit(\.cpuTimeAction),
        "--rewrite-signal": repeated(\.signals.rewrite),
        "--success-exit": repeated(\.signals.successExit),
        "--parent-death-signal": text(\.signals.parentDeathSignal),
    ]
}
