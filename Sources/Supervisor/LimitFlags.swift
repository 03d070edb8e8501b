import ArgumentParser
import Glibc
import JobObjects

/// The limit flags of `jobsup run` and `jobsup limits` as given, before they
/// are checked (declared in `RunFlags.limits`). `limits()` checks them, each
/// with a message that says what is wrong and what is accepted.
struct LimitFlags: Equatable {
    var memoryMax: String?
    var memoryHigh: String?
    var memoryLow: String?
    var memoryMin: String?
    var swapMax: String?
    var oomKillGroup = false
    var pidsMax: String?
    var cpus: String?
    var cpuPercent: String?
    var cpuPeriod: String?
    var cpuWeight: String?
    var cpuWindowsWeight: String?
    var cpuIdle = false
    var cpuset: String?
    var cpusetMems: String?
    var ioMax: [String] = []
    var ioWeight: String?
    var rlimit: [String] = []
    var cpuTime: String?
    var cpuTimeAction: String?

    /// True when no limit flag was given.
    var isEmpty: Bool { self == LimitFlags() }

    /// The limits the flags give, checked.
    func limits() throws(ValidationError) -> JobLimits {
        var limits = JobLimits()
        limits.memoryMax = try memoryMax.map { v throws(ValidationError) in try Self.bytes(v, flag: "--memory-max") }
        limits.memoryHigh = try memoryHigh.map { v throws(ValidationError) in try Self.bytes(v, flag: "--memory-high") }
        limits.memoryLow = try memoryLow.map { v throws(ValidationError) in try Self.bytes(v, flag: "--memory-low") }
        limits.memoryMin = try memoryMin.map { v throws(ValidationError) in try Self.bytes(v, flag: "--memory-min") }
        limits.swapMax = try swapMax.map { v throws(ValidationError) in try Self.bytes(v, flag: "--swap-max") }
        if oomKillGroup { limits.killJobOnOutOfMemory = true }
        if let text = pidsMax {
            if text.lowercased() == "max" {
                limits.maxProcesses = Int.max
            } else {
                guard let n = Int(text), n >= 1 else {
                    throw ValidationError(
                        "invalid --pids-max \(quotedForMessage(text)): give a whole number of at least 1 (processes and threads), or max")
                }
                limits.maxProcesses = n
            }
        }
        limits.cpu = try cpuQuota()
        if cpuWeight != nil && cpuWindowsWeight != nil {
            throw ValidationError("--cpu-weight and --cpu-windows-weight both set the CPU weight; give one")
        }
        if let text = cpuWeight {
            guard let n = Int(text), (1...10_000).contains(n) else {
                throw ValidationError(
                    "invalid --cpu-weight \(quotedForMessage(text)): give a whole number from 1 to 10000 (100 is the default share)")
            }
            limits.cpuWeight = CPUWeight(n)
        }
        if let text = cpuWindowsWeight {
            guard let n = Int(text), (1...9).contains(n) else {
                throw ValidationError(
                    "invalid --cpu-windows-weight \(quotedForMessage(text)): give a whole number from 1 to 9 (5 is the default share)")
            }
            limits.cpuWeight = CPUWeight.windows(n)
        }
        if cpuIdle { limits.cpuIdle = true }
        if let list = cpuset {
            guard JobLimits.isCPUList(list) else {
                throw ValidationError(
                    "invalid --cpuset \(quotedForMessage(list)): give CPU numbers and ranges separated by commas, such as 0-1,3")
            }
            limits.cpus = list
        }
        if let list = cpusetMems {
            guard JobLimits.isCPUList(list) else {
                throw ValidationError(
                    "invalid --cpuset-mems \(quotedForMessage(list)): give memory node numbers and ranges separated by commas, such as 0 or 0-1"
                )
            }
            limits.memoryNodes = list
        }
        limits.io = try ioMax.map { spec throws(ValidationError) in try Self.ioLimit(spec) }
        if let text = ioWeight {
            guard let n = Int(text), (1...10_000).contains(n) else {
                throw ValidationError(
                    "invalid --io-weight \(quotedForMessage(text)): give a whole number from 1 to 10000 (100 is the default share)")
            }
            limits.ioWeight = n
        }
        limits.perProcess = try rlimit.map { spec throws(ValidationError) in try Self.resourceLimit(spec) }
        limits.cpuTimeBudget = try cpuTimeBudget()
        // The library's own checks (the kernel's bounds) before anything is made.
        do { try limits.validate() } catch { throw ValidationError(error.message) }
        return limits
    }

    private func cpuQuota() throws(ValidationError) -> CPUQuota? {
        if cpus != nil && cpuPercent != nil {
            throw ValidationError("--cpus and --cpu-percent both set the CPU cap; give one")
        }
        var period: UInt64 = 100_000
        if let text = cpuPeriod {
            guard let micros = Self.microseconds(text), (1_000...1_000_000).contains(micros) else {
                throw ValidationError(
                    "invalid --cpu-period \(quotedForMessage(text)): give a duration from 1ms to 1s, such as 100ms (a bare number is microseconds)"
                )
            }
            guard cpus != nil || cpuPercent != nil else {
                throw ValidationError("--cpu-period needs --cpus or --cpu-percent")
            }
            period = micros
        }
        let minimum = 1_000.0 / Double(period)
        if let text = cpus {
            guard let n = decimalNumber(text), n.isFinite, n > 0 else {
                throw ValidationError("invalid --cpus \(quotedForMessage(text)): give a positive number of CPUs, such as 1.5 or 0.25")
            }
            guard n >= minimum else {
                throw ValidationError(
                    "--cpus \(text) is below the kernel's minimum of 1ms per period (\(minimum) CPUs at a \(period)µs period)")
            }
            let maximum = CPUQuota.maximumQuotaMicroseconds / period
            guard n <= Double(maximum) else {
                throw ValidationError(
                    "invalid --cpus \(quoted(text)): give at most \(maximum) CPUs (the kernel's cpu.max limit at a \(period)µs period)")
            }
            return CPUQuota.cpus(n, periodMicroseconds: period)
        }
        if let text = cpuPercent {
            let trimmed = text.hasSuffix("%") ? String(text.dropLast()) : text
            guard let p = decimalNumber(trimmed), p.isFinite, p > 0, p <= 100 else {
                throw ValidationError(
                    "invalid --cpu-percent \(quotedForMessage(text)): give a percentage of the whole machine above 0 and at most 100, such as 25"
                )
            }
            let quota = CPUQuota.percentOfMachine(p, periodMicroseconds: period)
            guard (quota.cpuCount ?? 0) >= minimum else {
                throw ValidationError("--cpu-percent \(text) is below the kernel's minimum of 1ms per period")
            }
            return quota
        }
        return nil
    }

    private func cpuTimeBudget() throws(ValidationError) -> CPUTimeBudget? {
        var action = CPUTimeBudget.Action.terminate
        if let text = cpuTimeAction {
            guard let chosen = CPUTimeBudget.Action(rawValue: text.lowercased()) else {
                throw ValidationError("invalid --cpu-time-action \(quotedForMessage(text)): give terminate or notify")
            }
            guard cpuTime != nil else { throw ValidationError("--cpu-time-action needs --cpu-time") }
            action = chosen
        }
        guard let text = cpuTime else { return nil }
        guard let duration = DurationArgument(argument: text)?.duration, duration > .zero else {
            throw ValidationError("invalid --cpu-time \(quotedForMessage(text)): give a positive duration such as 30s, 1.5m, 500ms or 2h")
        }
        return CPUTimeBudget(duration, action: action)
    }

    // MARK: value parsers

    static func bytes(_ text: String, flag: String) throws(ValidationError) -> UInt64 {
        do {
            return try ByteCount.parse(text, what: flag)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// "100ms", "1s", "50000us", "50000" (µs).
    static func microseconds(_ text: String) -> UInt64? {
        for (suffix, factor) in [("us", 1.0), ("µs", 1.0), ("ms", 1_000.0), ("s", 1_000_000.0)] where text.hasSuffix(suffix) {
            guard let value = decimalNumber(text.dropLast(suffix.count)), value.isFinite, value >= 0 else { return nil }
            return UInt64(roundingExactly: value * factor)
        }
        return UInt64(text)
    }

    /// "/dev/sda:wbps=10M,riops=100" or "8:0:rbps=1M".
    static func ioLimit(_ spec: String) throws(ValidationError) -> IOLimit {
        let accepted =
            "give DEVICE:KEY=VALUE[,KEY=VALUE…] with DEVICE a block device path or MAJOR:MINOR and KEY rbps, wbps, riops or wiops, such as /dev/sda:wbps=10M or 8:0:riops=1000"
        // The device ends at the last ':' before the first '='.
        guard let equals = spec.firstIndex(of: "="), let colon = spec[..<equals].lastIndex(of: ":"), colon != spec.startIndex else {
            throw ValidationError("invalid --io-max \(quotedForMessage(spec)): \(accepted)")
        }
        var limit = IOLimit(device: String(spec[..<colon]))
        for pair in spec[spec.index(after: colon)...].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else {
                throw ValidationError(
                    "invalid --io-max \(quotedForMessage(spec)): \(quotedForMessage(String(pair))) is not KEY=VALUE; \(accepted)")
            }
            let key = parts[0].lowercased()
            let text = String(parts[1])
            let value: UInt64?
            if text.lowercased() == "max" {
                value = nil
            } else if key == "rbps" || key == "wbps" {
                let bytes = try Self.bytes(text, flag: "--io-max \(key)")
                guard bytes > 0 else {
                    throw ValidationError("invalid --io-max \(quotedForMessage(spec)): \(key) must be at least 1 (or max)")
                }
                value = bytes
            } else if key == "riops" || key == "wiops" {
                guard let n = UInt64(text), n > 0 else {
                    throw ValidationError(
                        "invalid --io-max \(quotedForMessage(spec)): \(key) takes a whole number of operations per second of at least 1, or max"
                    )
                }
                value = n
            } else {
                throw ValidationError("invalid --io-max \(quotedForMessage(spec)): unknown key \(quotedForMessage(key)); \(accepted)")
            }
            switch key {
            case "rbps": limit.readBytesPerSecond = value
            case "wbps": limit.writeBytesPerSecond = value
            case "riops": limit.readOperationsPerSecond = value
            default: limit.writeOperationsPerSecond = value
            }
        }
        if [limit.readBytesPerSecond, limit.writeBytesPerSecond, limit.readOperationsPerSecond, limit.writeOperationsPerSecond].allSatisfy({
            $0 == nil
        }) {
            throw ValidationError("invalid --io-max \(quotedForMessage(spec)): it sets no rate; \(accepted)")
        }
        let device = limit.device
        let numbers = device.split(separator: ":")
        if !(numbers.count == 2 && numbers.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) })) {
            var info = stat()
            guard stat(device, &info) == 0 else {
                throw ValidationError(
                    "invalid --io-max \(quotedForMessage(spec)): device \(device) does not exist; name a block device such as /dev/sda, or give MAJOR:MINOR such as 8:0"
                )
            }
            guard (info.st_mode & S_IFMT) == S_IFBLK else {
                throw ValidationError("invalid --io-max \(quotedForMessage(spec)): \(device) is not a block device")
            }
        }
        return limit
    }

    /// "nofile=1024", "nofile=1024:4096", "as=1G", "core=unlimited".
    static func resourceLimit(_ spec: String) throws(ValidationError) -> ResourceLimit {
        let parts = spec.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let name = ResourceLimitName(rawValue: parts[0].lowercased()) else {
            throw ValidationError(
                "invalid --rlimit \(quotedForMessage(spec)): give NAME=SOFT[:HARD] with NAME one of \(ResourceLimitName.allNames), such as nofile=1024 or as=1G"
            )
        }
        let values = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(values.count) else {
            throw ValidationError("invalid --rlimit \(quotedForMessage(spec)): give one value, or SOFT:HARD")
        }
        func value(_ text: Substring) throws(ValidationError) -> UInt64 {
            let lower = text.lowercased()
            if lower == "unlimited" || lower == "infinity" || lower == "max" { return ResourceLimit.unlimited }
            switch name.unit {
            case .bytes:
                do { return try ByteCount.parse(String(text), what: "--rlimit \(name.rawValue)") } catch {
                    throw ValidationError(
                        "invalid --rlimit \(quotedForMessage(spec)): \(name.rawValue) is a size: bytes or a number with K, M, G or T (512M), or unlimited"
                    )
                }
            case .seconds:
                if let n = UInt64(text) { return n }
                guard let d = DurationArgument(argument: String(text))?.duration else {
                    throw ValidationError(
                        "invalid --rlimit \(quotedForMessage(spec)): \(name.rawValue) is CPU seconds: a whole number or a duration such as 30s or 2m, or unlimited"
                    )
                }
                return UInt64(d.components.seconds)
            case .count:
                guard let n = UInt64(text) else {
                    throw ValidationError(
                        "invalid --rlimit \(quotedForMessage(spec)): \(name.rawValue) takes a whole number, or unlimited")
                }
                return n
            }
        }
        let soft = try value(values[0])
        let hard = values.count == 2 ? try value(values[1]) : soft
        guard soft <= hard else {
            throw ValidationError("invalid --rlimit \(quotedForMessage(spec)): the soft limit is above the hard limit")
        }
        return ResourceLimit(resource: name.resource, soft: soft, hard: hard)
    }
}
