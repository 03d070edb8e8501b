import Glibc

// How JobLimits meet the kernel: which controllers each field needs, the
// checks made before anything is written, and the cgroup files themselves.
extension JobLimits {
    /// The controllers the set fields need.
    var requiredControllers: Set<String> {
        var needed: Set<String> = []
        if memoryMax != nil || memoryHigh != nil || memoryLow != nil || memoryMin != nil || swapMax != nil || killJobOnOutOfMemory != nil {
            needed.insert("memory")
        }
        if maxProcesses != nil { needed.insert("pids") }
        if cpu != nil || cpuWeight != nil || cpuIdle != nil { needed.insert("cpu") }
        if cpus != nil || memoryNodes != nil { needed.insert("cpuset") }
        if !io.isEmpty || ioWeight != nil { needed.insert("io") }
        for name in unified.keys { needed.insert(String(name.prefix { $0 != "." })) }
        return needed
    }

    /// Rejects out-of-range and malformed values before anything is written.
    package func validate() throws(JobObjectError) {
        func reject(_ message: String) -> JobObjectError {
            JobObjectError(.invalidArgument, message, operation: "validate limits")
        }
        if let n = maxProcesses, n < 1 { throw reject("maxProcesses must be at least 1 (pids.max), got \(n)") }
        if let quota = cpu {
            guard (1_000...1_000_000).contains(quota.periodMicroseconds) else {
                throw reject("the cpu.max period must be 1000...1000000 µs, got \(quota.periodMicroseconds)")
            }
            if let q = quota.quotaMicroseconds, q > CPUQuota.maximumQuotaMicroseconds {
                throw reject(
                    "the CPU cap is more than the kernel takes: cpu.max allows at most \(CPUQuota.maximumQuotaMicroseconds) µs per period (\(CPUQuota.maximumQuotaMicroseconds / quota.periodMicroseconds) CPUs at this period)"
                )
            }
            if let q = quota.quotaMicroseconds, q < 1_000 {
                throw reject(
                    "the CPU cap is \(Double(q) / Double(quota.periodMicroseconds)) CPUs: below the kernel's minimum of 1 ms per period (\(1_000.0 / Double(quota.periodMicroseconds)) CPUs at this period)"
                )
            }
        }
        if let w = cpuWeight?.value, !(1...10_000).contains(w) {
            throw reject("cpuWeight must be 1...10000 (cpu.weight; Windows weights 1...9 map with CPUWeight.windows), got \(w)")
        }
        if let w = ioWeight, !(1...10_000).contains(w) { throw reject("ioWeight must be 1...10000 (io.weight), got \(w)") }
        for (name, list) in [("cpus", cpus), ("memoryNodes", memoryNodes)] {
            if let list, !Self.isCPUList(list) { throw reject("\(name) \(quotedForMessage(list)) is not a CPU list such as \"0-1,3\"") }
        }
        for limit in io {
            _ = try limit.deviceNumber()
            let values = [
                limit.readBytesPerSecond, limit.writeBytesPerSecond, limit.readOperationsPerSecond, limit.writeOperationsPerSecond,
            ]
            if values.allSatisfy({ $0 == nil }) {
                throw reject("the io limit for \(limit.device) sets no rate (rbps, wbps, riops or wiops)")
            }
            if values.contains(0) { throw reject("an io rate for \(limit.device) is 0; the smallest rate is 1") }
        }
        for (name, value) in unified.sorted(by: { $0.key < $1.key }) {
            let parts = name.split(separator: ".", maxSplits: 1)
            let isName =
                parts.count == 2 && name.utf8.count <= 64
                && name.utf8.allSatisfy { byte in
                    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                        || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                }
            guard isName, Self.unifiedControllers.contains(String(parts[0])) else {
                throw reject(
                    "unified \(quotedForMessage(name)) is not a cgroup v2 file of the controllers \(Self.unifiedControllers.sorted().joined(separator: ", ")) (such as memory.swap.high or cpu.max.burst)"
                )
            }
            if value.isEmpty || value.utf8.count > 4096 || value.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) {
                throw reject("unified \(name): the value must be one line of 1 to 4096 bytes")
            }
        }
        if let budget = cpuTimeBudget, budget.limit <= .zero { throw reject("the CPU time budget must be positive") }
        for limit in perProcess { try limit.validate() }
        // Protection above the cap: the kernel takes both, then the job's
        // first allocations fail (ENOMEM at execve).
        if let max = memoryMax, max != ByteCount.unlimited {
            for (name, flag, value) in [("memoryMin", "memory.min", memoryMin), ("memoryLow", "memory.low", memoryLow)] {
                if let value, value != ByteCount.unlimited, value > max {
                    throw reject(
                        "\(name) (\(flag)) is \(value) bytes, above memoryMax (memory.max) \(max): memory protected from reclaim must fit under the cap"
                    )
                }
            }
        }
    }

    /// The controllers whose files `unified` may name.
    static let unifiedControllers: Set<String> = ["cpu", "cpuset", "hugetlb", "io", "memory", "misc", "pids", "rdma"]

    /// "0-3,5", "0": ASCII digits only (the kernel reads no others).
    package static func isCPUList(_ text: String) -> Bool {
        !text.isEmpty
            && text.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { part in
                let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                return (1...2).contains(bounds.count) && bounds.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
            }
    }

    /// The file writes, in an order the kernel accepts (memory.high before
    /// memory.max so a lowered max never sits below high).
    func fileWrites() throws(JobObjectError) -> [(file: String, value: String)] {
        func bytes(_ value: UInt64) -> String { value == ByteCount.unlimited ? "max" : String(value) }
        var writes: [(String, String)] = []
        if let v = memoryMin { writes.append(("memory.min", bytes(v))) }
        if let v = memoryLow { writes.append(("memory.low", bytes(v))) }
        if let v = memoryHigh { writes.append(("memory.high", bytes(v))) }
        if let v = memoryMax { writes.append(("memory.max", bytes(v))) }
        if let v = swapMax { writes.append(("memory.swap.max", bytes(v))) }
        if let v = killJobOnOutOfMemory { writes.append(("memory.oom.group", v ? "1" : "0")) }
        if let v = maxProcesses { writes.append(("pids.max", String(v))) }
        if let v = cpu { writes.append(("cpu.max", v.fileValue)) }
        if let v = cpuWeight { writes.append(("cpu.weight", String(v.value))) }
        if let v = cpuIdle { writes.append(("cpu.idle", v ? "1" : "0")) }
        if let v = memoryNodes { writes.append(("cpuset.mems", v)) }
        if let v = cpus { writes.append(("cpuset.cpus", v)) }
        if let v = ioWeight { writes.append(("io.weight", "default \(v)")) }
        for limit in io {
            func rate(_ key: String, _ value: UInt64?) -> String { "\(key)=\(value.map(String.init) ?? "max")" }
            let line = try [
                limit.deviceNumber(), rate("rbps", limit.readBytesPerSecond), rate("wbps", limit.writeBytesPerSecond),
                rate("riops", limit.readOperationsPerSecond), rate("wiops", limit.writeOperationsPerSecond),
            ].joined(separator: " ")
            writes.append(("io.max", line))
        }
        for (name, value) in unified.sorted(by: { $0.key < $1.key }) { writes.append((name, value)) }
        return writes
    }

    /// Writes the set fields into `directory`; the controllers must be enabled.
    func write(to directory: CgroupDirectory) throws(JobObjectError) {
        for (file, value) in try fileWrites() {
            switch FileContents.write(at: directory.fd, file, value) {
            case .success: continue
            case .failure(let errno) where errno == .noSuchFileOrDirectory:
                throw JobObjectError(
                    .controllerUnavailable,
                    "\(file) does not exist in the job: the kernel lacks this interface (e.g. memory.swap.max without swap accounting, cpu.idle before Linux 5.15)",
                    operation: "set limits", path: directory.path + "/" + file, errno: errno)
            case .failure(let errno):
                throw JobObjectError(
                    .invalidArgument, "the kernel refused \(quotedForMessage(value)) for \(file)",
                    operation: "set limits", path: directory.path + "/" + file, errno: errno)
            }
        }
    }

    /// Reads back the limits the kernel holds for `directory` (fields whose
    /// files are absent stay nil). `cpuTimeBudget` and `perProcess` live in
    /// the handle, not the kernel.
    static func read(from directory: CgroupDirectory) -> JobLimits {
        func text(_ file: String) -> String? {
            guard case .success(let value) = FileContents.read(at: directory.fd, file) else { return nil }
            return value.trimmingWhitespace
        }
        func bytes(_ file: String) -> UInt64? {
            text(file).flatMap { $0 == "max" ? ByteCount.unlimited : UInt64($0) }
        }
        var limits = JobLimits()
        limits.memoryMax = bytes("memory.max")
        limits.memoryHigh = bytes("memory.high")
        limits.memoryLow = bytes("memory.low")
        limits.memoryMin = bytes("memory.min")
        limits.swapMax = bytes("memory.swap.max")
        limits.killJobOnOutOfMemory = text("memory.oom.group").map { $0 == "1" }
        limits.maxProcesses = text("pids.max").flatMap { $0 == "max" ? Int.max : Int($0) }
        limits.cpu = text("cpu.max").flatMap(CPUQuota.init(fileValue:))
        limits.cpuWeight = text("cpu.weight").flatMap { Int($0) }.map(CPUWeight.init)
        limits.cpuIdle = text("cpu.idle").map { $0 == "1" }
        limits.cpus = text("cpuset.cpus").flatMap { $0.isEmpty ? nil : $0 }
        limits.memoryNodes = text("cpuset.mems").flatMap { $0.isEmpty ? nil : $0 }
        limits.ioWeight = text("io.weight").flatMap { $0.split(separator: "\n").first?.split(separator: " ").last.flatMap { Int($0) } }
        limits.io = (text("io.max") ?? "").nonEmptyLines.compactMap(IOLimit.init(fileLine:))
        return limits
    }
}

extension IOLimit {
    /// "major:minor" of the device: given as such, or the block device at a path.
    func deviceNumber() throws(JobObjectError) -> String {
        let parts = device.split(separator: ":")
        if parts.count == 2, parts.allSatisfy({ $0.allSatisfy(\.isNumber) && !$0.isEmpty }) { return device }
        var info = stat()
        guard stat(device, &info) == 0 else {
            throw JobObjectError(
                .invalidArgument,
                "io device \(device) does not exist; name a block device such as /dev/sda or give major:minor such as 8:0",
                operation: "validate limits", path: device)
        }
        guard (info.st_mode & S_IFMT) == S_IFBLK else {
            throw JobObjectError(.invalidArgument, "io device \(device) is not a block device", operation: "validate limits", path: device)
        }
        // glibc's major()/minor() are macros Swift cannot see; same arithmetic.
        let dev = UInt64(info.st_rdev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        return "\(major):\(minor)"
    }

    /// One line of io.max: "8:0 rbps=max wbps=1048576 riops=max wiops=max".
    init?(fileLine: Substring) {
        let fields = fileLine.split(separator: " ")
        guard let device = fields.first else { return nil }
        var values: [Substring: UInt64] = [:]
        for field in fields.dropFirst() {
            let pair = field.split(separator: "=")
            if pair.count == 2, let value = UInt64(pair[1]) { values[pair[0]] = value }
        }
        self.init(
            device: String(device), readBytesPerSecond: values["rbps"], writeBytesPerSecond: values["wbps"],
            readOperationsPerSecond: values["riops"], writeOperationsPerSecond: values["wiops"])
    }
}
