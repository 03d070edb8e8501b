/// The calling thread's effective capabilities, from /proc/thread-self/status
/// (libc has no capget wrapper; libcap belongs to the payload library).
enum EffectiveCapabilities {
    static let sysAdmin = 21
    static let sysResource = 24

    /// Whether capability `number` is effective; true when it cannot be
    /// told (the kernel then decides, and its refusal is reported).
    static func contains(_ number: Int) -> Bool {
        guard case .success(let status) = FileContents.read("/proc/thread-self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst("CapEff:".count).trimmingWhitespace, radix: 16)
        else { return true }
        return mask & (1 << UInt64(number)) != 0
    }
}
