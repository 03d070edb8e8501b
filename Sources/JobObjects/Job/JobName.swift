/// A validated job name: one cgroup directory name.
public struct JobName: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    /// Validates `value`: not empty, not `.` or `..`, no `/`, no newline or
    /// NUL, at most 255 bytes, and no cgroupfs interface-file prefix
    /// (`cgroup.`) that would collide with the kernel's own files.
    public init(_ value: String) throws(JobObjectError) {
        func reject(_ why: String) -> JobObjectError {
            JobObjectError(.invalidJobName, "invalid job name \(String(reflecting: value)): \(why)", operation: "validate job name")
        }
        if value.isEmpty { throw reject("it is empty; give a name such as \"build-42\" or omit it to generate one") }
        if value == "." || value == ".." { throw reject("\".\" and \"..\" name directories, not jobs") }
        if value.contains("/") { throw reject("it contains \"/\"; a job name is one path component (nest jobs with a parent instead)") }
        if value.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) { throw reject("it contains a newline or NUL") }
        if value.utf8.count > 255 { throw reject("it is \(value.utf8.count) bytes long; the limit is 255") }
        if value.hasPrefix("cgroup.") { throw reject("names starting with \"cgroup.\" are reserved by the kernel") }
        self.value = value
    }

    /// A fresh name, `job-` and 16 random hex digits.
    public static func generate() -> JobName {
        var generator = SystemRandomNumberGenerator()
        let bits = generator.next() as UInt64
        let hex = String(bits, radix: 16)
        return try! JobName("job-" + String(repeating: "0", count: 16 - hex.count) + hex)
    }

    public var description: String { value }
}
