import Glibc
import JobObjects

/// `linux.resources` → `JobLimits`, with runc's conversions for the cgroup
/// v1 units the spec still uses (cpu shares → cpu.weight, blkio weight →
/// io.weight). Values that mean "no limit" (0 or -1) set nothing.
enum OCIResourcesReader {
    static func read(_ node: YAMLNode, _ d: inout DocumentReader, _ path: String) -> JobLimits {
        var limits = JobLimits()
        guard let top = d.openMapping(node, path) else { return limits }
        if let memory = top["memory"], let entries = d.openMapping(memory, path + ".memory") {
            let limit = positive(entries["limit"], &d, path + ".memory.limit")
            limits.memoryMax = limit
            limits.memoryLow = positive(entries["reservation"], &d, path + ".memory.reservation")
            // The spec's swap is memory plus swap, as cgroup v1 had it.
            if let swap = positive(entries["swap"], &d, path + ".memory.swap") {
                if let limit, swap >= limit {
                    limits.swapMax = swap - limit
                } else {
                    d.report(path + ".memory.swap", memory, "is memory plus swap: it must be at least memory.limit")
                }
            }
        }
        if let pids = top["pids"], let entries = d.openMapping(pids, path + ".pids") {
            if let value = positive(entries["limit"], &d, path + ".pids.limit") {
                limits.maxProcesses = Int(clamping: value)
            }
        }
        if let cpu = top["cpu"], let entries = d.openMapping(cpu, path + ".cpu") {
            let quota = positive(entries["quota"], &d, path + ".cpu.quota")
            let period = positive(entries["period"], &d, path + ".cpu.period")
            if let quota {
                let quotaLimits = CPUQuota(quotaMicroseconds: quota, periodMicroseconds: period ?? 100_000)
                limits.cpu = quotaLimits
            }
            if let shares = positive(entries["shares"], &d, path + ".cpu.shares") {
                // runc's mapping of shares (2…262144) onto weight (1…10000).
                let clamped = min(max(shares, 2), 262_144)
                limits.cpuWeight = CPUWeight(Int(1 + ((clamped - 2) * 9999) / 262_142))
            }
            if let cpus = entries["cpus"].flatMap({ d.string($0, path + ".cpu.cpus") }), !cpus.isEmpty { limits.cpus = cpus }
            if let mems = entries["mems"].flatMap({ d.string($0, path + ".cpu.mems") }), !mems.isEmpty { limits.memoryNodes = mems }
            if let idle = entries["idle"].flatMap({ d.int($0, path + ".cpu.idle") }) { limits.cpuIdle = idle != 0 }
        }
        if let io = top["blockIO"], let entries = d.openMapping(io, path + ".blockIO") {
            if let weight = positive(entries["weight"], &d, path + ".blockIO.weight") {
                // blkio.weight (10…1000) onto io.weight (1…10000), as runc does.
                let clamped = min(max(weight, 10), 1000)
                limits.ioWeight = Int(1 + (clamped - 10) * 9999 / 990)
            }
            readThrottles(entries, &d, path + ".blockIO", into: &limits)
        }
        if let unified = top["unified"], let entries = d.openMapping(unified, path + ".unified") {
            for (name, value) in entries {
                if let text = d.string(value, path + ".unified." + name) { limits.unified[name] = text }
            }
        }
        do throws(JobObjectError) {
            try limits.validate()
        } catch {
            d.report(path, node, error.message)
        }
        return limits
    }

    /// A number above zero; 0 and -1 (the spec's "unlimited") give nil.
    private static func positive(_ node: YAMLNode?, _ d: inout DocumentReader, _ field: String) -> UInt64? {
        guard let node else { return nil }
        if case .scalar(let scalar) = node, let value = scalar.int, value <= 0 {
            if value < -1 { d.report(field, node, "must be -1 (no limit) or above") }
            return nil
        }
        return d.uint64(node, field).flatMap { $0 == 0 ? nil : $0 }
    }

    nonisolated(unsafe) private static let throttles: [(key: String, set: WritableKeyPath<IOLimit, UInt64?>)] = [
        ("throttleReadBpsDevice", \.readBytesPerSecond), ("throttleWriteBpsDevice", \.writeBytesPerSecond),
        ("throttleReadIOPSDevice", \.readOperationsPerSecond), ("throttleWriteIOPSDevice", \.writeOperationsPerSecond),
    ]

    private static func readThrottles(
        _ entries: [String: YAMLNode], _ d: inout DocumentReader, _ path: String, into limits: inout JobLimits
    ) {
        for (key, keyPath) in throttles {
            guard let list = entries[key], let items = d.sequence(list, path + "." + key) else { continue }
            for (i, item) in items.enumerated() {
                let field = DocumentReader.index(path + "." + key, i)
                guard let device = d.openMapping(item, field),
                    let major = device["major"].flatMap({ d.uint64($0, field + ".major") }),
                    let minor = device["minor"].flatMap({ d.uint64($0, field + ".minor") }),
                    let rate = device["rate"].flatMap({ d.uint64($0, field + ".rate") })
                else {
                    d.report(field, item, "needs major, minor and rate")
                    continue
                }
                let name = "\(major):\(minor)"
                var limit = limits.io.first { $0.device == name } ?? IOLimit(device: name)
                limit[keyPath: keyPath] = rate
                limits.io.removeAll { $0.device == name }
                limits.io.append(limit)
            }
        }
    }
}
