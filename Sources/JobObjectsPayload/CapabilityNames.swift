import CJobShim
import CJobShimPayload
import JobObjects

extension Capability {
    /// The capability called `name`, as libcap knows it (`cap_from_name`):
    /// "NET_BIND_SERVICE" (Kubernetes' spelling), "CAP_NET_BIND_SERVICE" or
    /// "cap_net_bind_service". Throws `.invalidArgument` for an unknown name.
    public init(name: String) throws(JobObjectError) {
        let lower = name.lowercased()
        let full = lower.hasPrefix("cap_") ? lower : "cap_" + lower
        let digits = lower.dropFirst(lower.hasPrefix("cap_") ? 4 : 0)
        let value = digits.allSatisfy(\.isNumber) ? -1 : jobshim_cap_from_name(full)
        guard value >= 0 else {
            throw JobObjectError(
                .invalidArgument,
                "unknown capability \"\(name)\": give a name such as NET_BIND_SERVICE or SYS_ADMIN (see capabilities(7))",
                operation: "parse capability")
        }
        self.init(rawValue: value)
    }

    /// "CAP_NET_BIND_SERVICE" (`cap_to_name`), or "CAP_40" for a number
    /// libcap has no name for.
    public var name: String {
        var buffer = [CChar](repeating: 0, count: 64)
        guard jobshim_cap_to_name(rawValue, &buffer, buffer.count) == 0 else { return "CAP_\(rawValue)" }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Int(text) != nil ? "CAP_\(text)" : text.uppercased()
    }

    /// Every capability the running kernel knows (0…cap_last_cap).
    public static var all: Set<Capability> {
        Set((0...jobshim_cap_last_cap()).map { Capability(rawValue: $0) })
    }

    /// The capabilities this process holds in its permitted set, which are
    /// the most it can give a child.
    static func permitted() -> Set<Capability> {
        var mask: UInt64 = 0
        guard jobshim_cap_permitted(&mask) == 0 else { return [] }
        return Set((0..<64).filter { mask & (1 << UInt64($0)) != 0 }.map { Capability(rawValue: Int32($0)) })
    }
}
