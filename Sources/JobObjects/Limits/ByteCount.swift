/// Parses sizes as people write them: "512M", "1.5G", "64Ki", "4096",
/// "max". Suffixes K, M, G, T (and KB, MB, …, Ki, Mi, …, KiB, MiB, …) are
/// powers of 1024, as cgroup files and Kubernetes' "Mi" mean them.
public enum ByteCount {
    /// No limit: written to cgroup files as "max".
    public static let unlimited = UInt64.max

    /// The byte count (`unlimited` for "max"); throws `.invalidArgument` naming what is accepted.
    public static func parse(_ text: String, what: String = "size") throws(JobObjectError) -> UInt64 {
        let trimmed = text.trimmingWhitespace
        if trimmed.lowercased() == "max" || trimmed.lowercased() == "unlimited" { return unlimited }
        let units: [(String, UInt64)] = [
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
            ("ki", 1 << 10), ("mi", 1 << 20), ("gi", 1 << 30), ("ti", 1 << 40),
            ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("tb", 1 << 40),
            ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1),
        ]
        let lower = trimmed.lowercased()
        var number = Substring(lower)
        var scale: UInt64 = 1
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            number = lower.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = decimalNumber(number), value >= 0, value.isFinite,
            value * Double(scale) < Double(UInt64.max / 2)
        else {
            throw JobObjectError(
                .invalidArgument,
                "invalid \(what) \(quotedForMessage(text)): give bytes or a number with K, M, G or T (powers of 1024, e.g. 512M, 1.5G) or \"max\"",
                operation: "parse \(what)")
        }
        return UInt64(roundingExactly: value * Double(scale)) ?? unlimited
    }
}

extension StringProtocol {
    package var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
