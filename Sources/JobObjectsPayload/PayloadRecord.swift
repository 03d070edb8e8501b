import JobObjects
import Glibc

/// The crash-safe record of one payload's storage: /run/jobobjects/NAME/.payload.
///
/// It says who owns the storage (the owner and its janitor, by pid and
/// start time), which cgroup the job is in, what was mounted and created,
/// and which ephemeral-uid lock it holds, so that whoever finds it after
/// both died can release everything (`PayloadStateDirectory.reclaimStale`).
/// One `key<TAB>value…` line per fact; `%`, tab and newline in paths are
/// written as %25, %09 and %0A.
struct PayloadRecord: Sendable, Equatable {
    var owner: ProcessIdentity
    var janitor: ProcessIdentity?
    var cgroup: String?
    /// The cgroup's inode number (its cgroup id, never reused while the
    /// system runs), so that a later job of the same path is never taken for it.
    var cgroupID: UInt64?
    var mode: PayloadSpec.StorageMode
    /// Mount targets in the owner's namespace (host mode), in mount order.
    var mounts: [String] = []
    /// Paths created for the storage, in creation order (the root first).
    var created: [PayloadPlan.CreatedPath] = []
    var uidLock: String?

    init(owner: ProcessIdentity, mode: PayloadSpec.StorageMode) {
        self.owner = owner
        self.mode = mode
    }

    var serialized: String {
        var lines = ["owner\t\(owner.pid)\t\(owner.startTime)", "mode\t\(mode.rawValue)"]
        if let janitor { lines.append("janitor\t\(janitor.pid)\t\(janitor.startTime)") }
        if let cgroup { lines.append("cgroup\t\(cgroupID ?? 0)\t" + Self.escape(cgroup)) }
        lines += mounts.map { "mount\t" + Self.escape($0) }
        lines += created.map { "created\t\($0.isDirectory ? "dir" : "file")\t" + Self.escape($0.path) }
        if let uidLock { lines.append("uid\t" + Self.escape(uidLock)) }
        return lines.joined(separator: "\n") + "\n"
    }

    init?(parsing text: String) {
        var owner: ProcessIdentity?
        var mode: PayloadSpec.StorageMode?
        var record = PayloadRecord(owner: ProcessIdentity(pid: 0, startTime: 0), mode: .privateNamespace)
        for line in text.nonEmptyLines {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch (fields.first, fields.count) {
            case ("owner", 3):
                guard let pid = pid_t(fields[1]), let start = UInt64(fields[2]) else { return nil }
                owner = ProcessIdentity(pid: pid, startTime: start)
            case ("janitor", 3):
                guard let pid = pid_t(fields[1]), let start = UInt64(fields[2]) else { return nil }
                record.janitor = ProcessIdentity(pid: pid, startTime: start)
            case ("mode", 2): mode = PayloadSpec.StorageMode(rawValue: fields[1])
            case ("cgroup", 3):
                record.cgroupID = UInt64(fields[1]).flatMap { $0 == 0 ? nil : $0 }
                record.cgroup = Self.unescape(fields[2])
            case ("mount", 2): record.mounts.append(Self.unescape(fields[1]))
            case ("created", 3): record.created.append(.init(path: Self.unescape(fields[2]), isDirectory: fields[1] == "dir"))
            case ("uid", 2): record.uidLock = Self.unescape(fields[1])
            default: return nil
            }
        }
        guard let owner, let mode else { return nil }
        record.owner = owner
        record.mode = mode
        self = record
    }

    static func escape(_ path: String) -> String {
        path.replacingAll("%", "%25").replacingAll("\t", "%09").replacingAll("\n", "%0A")
    }

    static func unescape(_ text: String) -> String {
        text.replacingAll("%0A", "\n").replacingAll("%09", "\t").replacingAll("%25", "%")
    }
}

extension String {
    /// Every occurrence of `target` replaced (without Foundation).
    func replacingAll(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
