/// A JSON object written field by field, without Foundation: jobsup's JSON
/// outputs are flat objects of strings, numbers, booleans and nulls, and
/// this keeps the run path free of JSONEncoder.
struct JSONObject {
    private var fields: [String] = []

    init() {}

    mutating func add(_ key: String, _ value: String?) {
        fields.append(Self.quoted(key) + ":" + (value.map(Self.quoted) ?? "null"))
    }

    mutating func add<N: BinaryInteger>(_ key: String, _ value: N?) {
        fields.append(Self.quoted(key) + ":" + (value.map { String($0) } ?? "null"))
    }

    mutating func add(_ key: String, _ value: Bool?) {
        fields.append(Self.quoted(key) + ":" + (value.map { $0 ? "true" : "false" } ?? "null"))
    }

    mutating func add(_ key: String, _ value: Double?) {
        fields.append(Self.quoted(key) + ":" + (value.map { $0.isFinite ? String($0) : "null" } ?? "null"))
    }

    /// A value that is already JSON text (a nested object or array).
    mutating func addRaw(_ key: String, _ json: String) {
        fields.append(Self.quoted(key) + ":" + json)
    }

    var text: String { "{" + fields.joined(separator: ",") + "}" }

    static func array(_ elements: [String]) -> String { "[" + elements.joined(separator: ",") + "]" }

    /// An object of string values, in the order given.
    static func object(_ entries: [(key: String, value: String)]) -> String {
        var object = JSONObject()
        for (key, value) in entries { object.add(key, value) }
        return object.text
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension Duration {
    /// Whole microseconds, as cgroup files count CPU time.
    var microseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }

    /// "1.250000" seconds.
    var secondsText: String {
        let us = microseconds
        let fraction = String(us % 1_000_000)
        return "\(us / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }
}
