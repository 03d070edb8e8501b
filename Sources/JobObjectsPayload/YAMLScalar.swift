import JobObjects
/// A scalar exactly as written, and what YAML 1.1 makes of it: a plain
/// (unquoted) scalar that looks like null, a boolean or a number is one; a
/// quoted scalar is always a string. Explicit tags (`!!str`) are not
/// consulted: nothing the readers accept needs them.
struct YAMLScalar {
    let string: String
    let isPlain: Bool
    let line: Int

    enum Kind { case null, bool, int, float, string }

    var kind: Kind {
        guard isPlain else { return .string }
        if Self.nulls.contains(string) { return .null }
        if bool != nil { return .bool }
        if integerParts != nil { return .int }
        if isFloat { return .float }
        return .string
    }

    /// The value of a boolean (`true`, `yes`, `on`, `false`, `no`, `off`
    /// in three capitalisations each).
    var bool: Bool? {
        guard isPlain else { return nil }
        if Self.trues.contains(string) { return true }
        if Self.falses.contains(string) { return false }
        return nil
    }

    /// The value of an integer (decimal, 0x hex, 0b binary, 0-prefixed
    /// octal, `_` between digits), nil if it is none or does not fit.
    var int: Int? {
        guard isPlain, let (negative, radix, digits) = integerParts,
            let magnitude = Int(digits, radix: radix)
        else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// The value of a non-negative integer up to UInt64's maximum (seccomp
    /// argument masks such as 0xffffffffffffffff).
    var uint64: UInt64? {
        guard isPlain, let (negative, radix, digits) = integerParts, !negative else { return nil }
        return UInt64(digits, radix: radix)
    }

    private static let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
    private static let trues: Set<String> = ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"]
    private static let falses: Set<String> = ["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"]

    /// Sign, radix and digits (without `_`) of an integer-looking scalar.
    private var integerParts: (negative: Bool, radix: Int, digits: String)? {
        var rest = Substring(string)
        var negative = false
        if let sign = rest.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        let radix: Int
        if rest.hasPrefix("0b") {
            radix = 2
            rest = rest.dropFirst(2)
        } else if rest.hasPrefix("0x") {
            radix = 16
            rest = rest.dropFirst(2)
        } else if rest.count > 1, rest.hasPrefix("0") {
            radix = 8
            rest = rest.dropFirst()
        } else {
            radix = 10
            if rest.first == "_" { return nil }
        }
        let digits = String(rest.filter { $0 != "_" })
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else { return nil }
        return (negative, radix, digits)
    }

    /// `1.5`, `-2e3`, `.5`, `.inf`, `.nan` and the like.
    private var isFloat: Bool {
        if [".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF", ".nan", ".NaN", ".NAN"].contains(string) {
            return true
        }
        var rest = Substring(string)
        if let sign = rest.first, sign == "-" || sign == "+" { rest = rest.dropFirst() }
        var mantissa = rest
        var exponent: Substring?
        if let e = rest.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = rest[..<e]
            exponent = rest[rest.index(after: e)...]
        }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count > 1 ? parts[1] : nil
        func digits(_ s: Substring) -> Bool { s.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "_") } }
        guard digits(whole), fraction.map(digits) ?? true, !(whole.isEmpty && (fraction ?? "").isEmpty) else { return false }
        guard whole.first != "_" else { return false }
        if let exponent {
            var e = exponent
            if let sign = e.first, sign == "-" || sign == "+" { e = e.dropFirst() }
            guard !e.isEmpty, e.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        }
        return true
    }
}
