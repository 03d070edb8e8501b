@testable import JobObjects
@testable import JobObjectsPayload
import Testing

@Suite("YAML documents (libyaml)")
struct YAMLNodeTests {
    func scalar(_ text: String) throws -> YAMLScalar {
        let node = try #require(try YAMLNode.compose("value: \(text)"))
        guard case .mapping(let pairs, _) = node, case .scalar(let scalar) = pairs.first?.value else {
            Issue.record("not a mapping of one scalar: \(text)")
            throw YAMLError(line: nil, message: "unexpected shape")
        }
        return scalar
    }

    @Test(arguments: [
        ("80", YAMLScalar.Kind.int, 80), ("-12", .int, -12), ("0x1F", .int, 31), ("0b101", .int, 5),
        ("017", .int, 15), ("1_000", .int, 1000), ("0", .int, 0),
    ])
    func plainIntegersAreNumbers(_ text: String, _ kind: YAMLScalar.Kind, _ value: Int) throws {
        let scalar = try scalar(text)
        #expect(scalar.kind == kind && scalar.int == value, "\(text)")
    }

    @Test func otherPlainScalarsResolveAsYAML11Does() throws {
        #expect(try scalar("yes").bool == true && scalar("Off").bool == false && scalar("TRUE").kind == .bool)
        #expect(try scalar("~").kind == .null && scalar("null").kind == .null && scalar("").kind == .null)
        #expect(try scalar("1.5").kind == .float && scalar("-2e3").kind == .float && scalar(".inf").kind == .float)
        #expect(try scalar("abc").kind == .string && scalar("12abc").kind == .string && scalar("_1").kind == .string)
        #expect(try scalar("'80'").kind == .string && scalar("\"yes\"").bool == nil)
        #expect(try scalar("99999999999999999999").kind == .int && scalar("99999999999999999999").int == nil)
        #expect(try scalar("0xffffffffffffffff").uint64 == .max && scalar("18446744073709551615").uint64 == .max)
        #expect(try scalar("-1").uint64 == nil && scalar("'7'").uint64 == nil)
    }

    @Test func nodesKnowTheirLines() throws {
        let node = try #require(try YAMLNode.compose("a: 1\nb:\n  - x\n  - y\n"))
        guard case .mapping(let pairs, let line) = node, case .sequence(let items, _) = pairs[1].value else {
            Issue.record("unexpected shape")
            return
        }
        #expect(line == 1 && pairs[0].key.line == 1 && pairs[1].key.line == 2)
        #expect(items.map(\.line) == [3, 4])
    }

    @Test func jsonIsAYAMLDocument() throws {
        let node = try #require(try YAMLNode.compose("{\"a\": [1, \"two\", true]}"))
        guard case .mapping(let pairs, _) = node, case .sequence(let items, _) = pairs[0].value,
            case .scalar(let one) = items[0], case .scalar(let two) = items[1], case .scalar(let yes) = items[2]
        else {
            Issue.record("unexpected shape")
            return
        }
        #expect(one.int == 1 && two.kind == .string && yes.bool == true)
    }

    @Test(arguments: [
        ("a: [1, 2\nb: 3\n", "while parsing a flow sequence"),
        ("a: 1\n---\nb: 2\n", "a second document starts here"),
        ("a: &x [*x]\n", "the alias *x names no anchor before it"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                + "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
            "repeats (through aliases) more than 100000 nodes"
        ),
    ])
    func malformedDocumentsAreErrorsWithALine(_ text: String, _ message: String) {
        #expect {
            _ = try YAMLNode.compose(text)
        } throws: { error in
            guard let error = error as? YAMLError else { return false }
            return error.message.contains(message) && error.line != nil
        }
    }

    /// Deep nesting is refused once it passes the limit, while parsing:
    /// a document of 100,000 levels costs what its first 256 do. Each
    /// style of collection, nested as deep as the seed draws.
    @Test(arguments: [0, 1, 2, 3])
    func deepNestingIsRefusedWhileParsing(_ seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let depth = Int.random(in: YAMLNode.maximumDepth + 1...100_000, using: &random)
        let (open, close) = [("[", "]"), ("{a: ", "}"), ("- ", "")][Int(seed % 3)]
        let text = String(repeating: open, count: depth) + "x" + String(repeating: close, count: depth) + "\n"
        #expect {
            _ = try YAMLNode.compose(text)
        } throws: { error in
            (error as? YAMLError)?.message.contains("nests deeper than \(YAMLNode.maximumDepth) levels") == true
        }
    }

    @Test func anEmptyDocumentHasNoNode() throws {
        #expect(try YAMLNode.compose("") == nil)
        #expect(try YAMLNode.compose("# only a comment\n") == nil)
    }
}
