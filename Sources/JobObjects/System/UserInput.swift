extension BinaryInteger {
    /// `value` rounded to the nearest whole number, when this type can hold
    /// it; nil for a value out of range, infinite or NaN. Every parsed
    /// number becomes an integer through this: `Int64(x.rounded())` traps
    /// on 1e16 seconds in milliseconds, and a user can type that.
    package init?(roundingExactly value: Double) {
        self.init(exactly: value.rounded())
    }
}

/// `value` in quotes for an error message, cut short when long: a value can
/// be anything a user typed (a 100 KB argument), and the message should
/// still fit on a screen. Control characters are escaped.
package func quotedForMessage(_ value: String) -> String {
    let limit = 64
    let shown = value.count > limit ? String(value.prefix(limit)) : value
    let reflected = String(reflecting: shown)
    return value.count > limit ? String(reflected.dropLast()) + "…\"" : reflected
}

/// The value of `text` when it is a decimal number as a person writes one —
/// digits with an optional sign, point and exponent (`1.5`, `2e9`, `-3`) —
/// else nil. `Double(_:)` alone also reads hexadecimal (`0x10`, `0x1p4`),
/// `inf` and `nan`, which no limit or duration means.
package func decimalNumber(_ text: some StringProtocol) -> Double? {
    var sawDigit = false
    for character in text.utf8 {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
        case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): continue
        case UInt8(ascii: "+"), UInt8(ascii: "-"): continue
        default: return nil
        }
    }
    guard sawDigit else { return nil }
    return Double(String(text))
}
