import CJobShim

/// The calling thread's effective capabilities (capget(2)).
enum EffectiveCapabilities {
    static let sysAdmin = 21
    static let sysResource = 24

    /// Whether capability `number` is effective; true when it cannot be
    /// told (the kernel then decides, and its refusal is reported).
    static func contains(_ number: Int) -> Bool {
        var mask: UInt64 = 0
        guard jobshim_effective_capabilities(&mask) == 0 else { return true }
        return mask & (1 << UInt64(number)) != 0
    }
}
