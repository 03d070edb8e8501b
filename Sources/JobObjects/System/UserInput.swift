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
