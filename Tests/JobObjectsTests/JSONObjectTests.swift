import Foundation
@testable import Supervisor
import Testing

/// jobsup writes its JSON by hand; a JSON parser must read back exactly
/// what went in, whatever the strings hold.
@Suite("jobsup's JSON writer")
struct JSONObjectTests {
    @Test func everyStringComesBackAsItWent() throws {
        var awkward = [
            "", "plain", "quote \" and backslash \\", "slash / stays", "tab\tnewline\ncarriage\rreturn",
            "bell\u{07} escape\u{1B} delete\u{7F}", "\u{00}nul inside", "line separator \u{2028} paragraph \u{2029}",
            "ünïcødé ✓ 🧪 \u{10FFFF}", String(repeating: "\\\"", count: 1000),
        ]
        awkward += (0..<0x20).map { "control \(String(UnicodeScalar(UInt8($0))))" }
        for value in awkward {
            var object = JSONObject()
            object.add(value, value)
            let parsed = try JSONSerialization.jsonObject(with: Data(object.text.utf8)) as? [String: String]
            #expect(parsed == [value: value], "\(value.debugDescription) → \(object.text)")
        }
    }

    @Test func numbersBooleansNullsAndNesting() throws {
        var inner = JSONObject()
        inner.add("n", Int64.min)
        var object = JSONObject()
        object.add("max", UInt64.max)
        object.add("yes", true)
        object.add("none", nil as String?)
        object.add("ratio", 0.25)
        object.add("nan", Double.nan)
        object.addRaw("inner", JSONObject.array([inner.text, "1"]))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(object.text.utf8)) as? [String: Any])
        #expect((parsed["max"] as? NSNumber)?.uint64Value == UInt64.max)
        #expect(parsed["yes"] as? Bool == true)
        #expect(parsed["none"] is NSNull && parsed["nan"] is NSNull)
        #expect(parsed["ratio"] as? Double == 0.25)
        let array = try #require(parsed["inner"] as? [Any])
        #expect(((array[0] as? [String: Any])?["n"] as? NSNumber)?.int64Value == Int64.min)
    }
}
