import JobObjects
import Glibc

/// Where payloads keep their state, and the path arithmetic of specs.
enum PayloadPaths {
    /// The state root: one directory per running payload, and the
    /// ephemeral-uid locks. A tmpfs on every systemd host, so nothing in it
    /// outlives a reboot.
    static let stateRoot = "/run/jobobjects"
    /// The ephemeral-uid locks (a job name cannot start with ".").
    static let uidLocks = stateRoot + "/.uids"
    /// The record of a payload's storage, inside its directory.
    static let recordName = ".payload"

    /// /run/jobobjects/NAME: the payload's own directory.
    static func storageRoot(_ name: String) -> String { stateRoot + "/" + name }
    static func defaultSandbox(_ name: String) -> String { storageRoot(name) + "/sandbox" }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Without empty and "." components or a trailing "/"; ".." is kept
    /// (callers reject it where it matters).
    static func normalize(_ path: String) -> String {
        let parts = path.split(separator: "/").filter { $0 != "." }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : joined
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `path` against `base` when relative.
    static func resolve(_ path: String, against base: String?) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        return normalize((base ?? currentDirectory()) + "/" + path)
    }

    /// Whether `path` is `root` or below it (both normalized).
    static func isWithin(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }

    static func hasDotDot(_ path: String) -> Bool {
        path.split(separator: "/").contains("..")
    }

    /// Replaces `$(CONTAINER_SANDBOX_MOUNT_POINT)`, `${CONTAINER_SANDBOX_MOUNT_POINT}`
    /// and `$CONTAINER_SANDBOX_MOUNT_POINT` (not followed by a name
    /// character) with `sandbox`; `$$(` stays a literal `$(`, as in Kubernetes.
    static func expand(_ text: String, sandbox: String) -> String {
        let name = PayloadSpec.sandboxVariable
        var result = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$(") {
                result += "$("
                rest = after.dropFirst(2)
            } else if after.hasPrefix("(\(name))") {
                result += sandbox
                rest = after.dropFirst(name.count + 2)
            } else if after.hasPrefix("{\(name)}") {
                result += sandbox
                rest = after.dropFirst(name.count + 2)
            } else if after.hasPrefix(name), !(after.dropFirst(name.count).first.map(isNameCharacter) ?? false) {
                result += sandbox
                rest = after.dropFirst(name.count)
            } else {
                result += "$"
                rest = after
            }
        }
        return result + rest
    }

    private static func isNameCharacter(_ c: Character) -> Bool {
        c == "_" || (c.isASCII && (c.isLetter || c.isNumber))
    }
}
