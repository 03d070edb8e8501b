/// A validated job name: one cgroup directory name.
public struct JobName: Sendable, Hashable, CustomStringConvertible {
    /// The name as text.
    public let value: String

    /// Validates `value`: not empty, not `.` or `..`, no `/`, no newline or
    /// NUL, at most 255 bytes, and no cgroupfs interface-file prefix
    /// (`cgroup.`, `cpu.`, `memory.`, … `reservedPrefixes`) that would
    /// collide with the kernel's own files.
    public init(_ value: String) throws(JobObjectError) {
        func reject(_ why: String) -> JobObjectError {
            JobObjectError(.invalidJobName, "invalid job name \(quotedForMessage(value)): \(why)", operation: "validate job name")
        }
        // Checked as UTF-8 bytes: each byte looked for is ASCII, which never
        // occurs inside a longer sequence (and "\r\n", one Character, is
        // caught too).
        let bytes = value.utf8
        if bytes.isEmpty { throw reject("it is empty; give a name such as \"build-42\" or omit it to generate one") }
        if value == "." || value == ".." { throw reject("\".\" and \"..\" name directories, not jobs") }
        if bytes.contains(UInt8(ascii: "/")) {
            throw reject("it contains \"/\"; a job name is one path component (nest jobs with a parent instead)")
        }
        if bytes.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") || $0 == 0 }) {
            throw reject("it contains a newline or NUL")
        }
        if bytes.count > 255 { throw reject("it is \(bytes.count) bytes long; the limit is 255") }
        if let dot = value.firstIndex(of: "."), Self.reservedPrefixes.contains(String(value[..<dot])) {
            throw reject(
                "names that start with \"\(value[..<dot]).\" are the kernel's interface files in every cgroup (cpu.stat, memory.pressure…); "
                    + "choose another, such as \"\(value[..<dot])-\(value[value.index(after: dot)...])\"")
        }
        self.value = value
    }

    /// The prefixes of cgroupfs interface files: `cgroup.` and each
    /// controller's (v2, and v1's for hosts that mount both), so that
    /// `cpu.stat` or `io.pressure` is refused here rather than colliding
    /// with the kernel's file at create time.
    static let reservedPrefixes: Set<String> = [
        "cgroup", "cpu", "cpuset", "io", "memory", "pids", "rdma", "hugetlb", "misc", "dmem", "irq",
        "blkio", "cpuacct", "devices", "freezer", "net_cls", "net_prio", "perf_event",
    ]

    private init(valid value: String) {
        self.value = value
    }

    /// A fresh name, `job-` and 16 random hex digits.
    public static func generate() -> JobName {
        var generator = SystemRandomNumberGenerator()
        let bits = generator.next() as UInt64
        // Byte by byte: in a process that makes one job, the first use of
        // String(_:radix:), padding and concatenation costs more than the
        // rest of naming the job.
        let value = String(unsafeUninitializedCapacity: 20) { name in
            name[0] = UInt8(ascii: "j")
            name[1] = UInt8(ascii: "o")
            name[2] = UInt8(ascii: "b")
            name[3] = UInt8(ascii: "-")
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: bits >> (60 - 4 * index)) & 0xF
                name[4 + index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 20
        }
        return JobName(valid: value)
    }

    public var description: String { value }
}
