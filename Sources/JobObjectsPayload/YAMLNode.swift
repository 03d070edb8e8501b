import JobObjects
import CLibYAML

/// A node of a YAML (or JSON, a subset) document, with the line it starts on
/// (1-based), composed by libyaml. Aliases are already resolved to the node
/// they name.
indirect enum YAMLNode {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], line: Int)
    case mapping([(key: YAMLNode, value: YAMLNode)], line: Int)

    var line: Int {
        switch self {
        case .scalar(let scalar): scalar.line
        case .sequence(_, let line), .mapping(_, let line): line
        }
    }
}

extension YAMLNode {
    /// The node written as JSON: scalars keep what YAML made of them (a
    /// plain number stays a number, a quoted one a string). For handing a
    /// part of one document to the reader of another (an OCI config's
    /// seccomp profile).
    var jsonText: String {
        switch self {
        case .scalar(let scalar):
            switch scalar.kind {
            case .null: return "null"
            case .bool: return scalar.bool == true ? "true" : "false"
            case .int, .float: return scalar.string
            case .string: return Self.quoted(scalar.string)
            }
        case .sequence(let items, _):
            return "[" + items.map(\.jsonText).joined(separator: ",") + "]"
        case .mapping(let entries, _):
            return "{" + entries.map { "\($0.key.jsonKey):\($0.value.jsonText)" }.joined(separator: ",") + "}"
        }
    }

    private var jsonKey: String {
        if case .scalar(let scalar) = self { return Self.quoted(scalar.string) }
        return Self.quoted("")
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Why a document could not be composed, and where.
struct YAMLError: Error {
    let line: Int?
    let message: String
}

extension YAMLNode {
    /// Limits on what one document may expand to: nesting, and aliases that
    /// repeat a node exponentially ("billion laughs"). Checked as the parser
    /// reads, so a hostile document costs time linear in what is read
    /// before the limit, not in its whole length.
    static let maximumDepth = 256
    static let maximumNodes = 100_000

    /// Composes the single document of `text`; nil if it has none.
    static func compose(_ text: String) throws(YAMLError) -> YAMLNode? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else {
            throw YAMLError(line: nil, message: "cannot start the YAML parser (out of memory)")
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml asserts on a null input: an empty document has no node.
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        return try bytes.withUnsafeBufferPointer { buffer throws(YAMLError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var composer = Composer()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) != 0 else { throw error(of: parser) }
                defer { yaml_event_delete(&event) }
                if try composer.take(event) { return composer.root }
            }
        }
    }

    private static func error(of parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        let context = parser.context.map { String(cString: $0) + " " } ?? ""
        return YAMLError(line: Int(parser.problem_mark.line) + 1, message: context + problem)
    }

    /// Builds nodes from libyaml's events, with a stack of the collections
    /// being read; anchored nodes are kept by name for the aliases.
    private struct Composer {
        private(set) var root: YAMLNode?
        private var open: [Collection] = []
        private var anchors: [String: (node: YAMLNode, size: Int)] = [:]
        private var nodes = 0
        private var documents = 0

        private struct Collection {
            var isMapping: Bool
            var line: Int
            var anchor: String?
            var items: [YAMLNode] = []
            /// Nodes in it so far, itself included: what an alias repeats.
            var size = 1
        }

        /// Takes one event; true at the end of the stream.
        mutating func take(_ event: yaml_event_t) throws(YAMLError) -> Bool {
            let line = Int(event.start_mark.line) + 1
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return true
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 { throw YAMLError(line: line, message: "a second document starts here; give one document") }
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                let node = YAMLNode.scalar(YAMLScalar(string: text, isPlain: scalar.style == YAML_PLAIN_SCALAR_STYLE, line: line))
                try add(node, size: 1, anchor: Self.name(scalar.anchor), line: line)
            case YAML_ALIAS_EVENT:
                let name = Self.name(event.data.alias.anchor) ?? ""
                guard let (node, size) = anchors[name] else {
                    throw YAMLError(line: line, message: "the alias *\(name) names no anchor before it")
                }
                try add(node, size: size, anchor: nil, line: line)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                let anchor = Self.name(isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor)
                try count(1, line: line)
                guard open.count < YAMLNode.maximumDepth else {
                    throw YAMLError(line: line, message: "the document nests deeper than \(YAMLNode.maximumDepth) levels")
                }
                open.append(Collection(isMapping: isMapping, line: line, anchor: anchor))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let done = open.popLast() else { throw YAMLError(line: line, message: "a collection ends that never started") }
                let node: YAMLNode
                if done.isMapping {
                    var pairs: [(key: YAMLNode, value: YAMLNode)] = []
                    pairs.reserveCapacity(done.items.count / 2)
                    for index in stride(from: 0, to: done.items.count - 1, by: 2) {
                        pairs.append((done.items[index], done.items[index + 1]))
                    }
                    node = .mapping(pairs, line: done.line)
                } else {
                    node = .sequence(done.items, line: done.line)
                }
                // Counted when it started; its size goes to its parent.
                try place(node, size: done.size, anchor: done.anchor)
            default:
                break  // stream start, document end: nothing to build
            }
            return false
        }

        /// A node read whole (a scalar, or an alias repeating `size` nodes).
        private mutating func add(_ node: YAMLNode, size: Int, anchor: String?, line: Int) throws(YAMLError) {
            try count(size, line: line)
            try place(node, size: size, anchor: anchor)
        }

        private mutating func place(_ node: YAMLNode, size: Int, anchor: String?) throws(YAMLError) {
            if let anchor { anchors[anchor] = (node, size) }
            if open.isEmpty {
                root = node
            } else {
                open[open.count - 1].items.append(node)
                open[open.count - 1].size += size
            }
        }

        private mutating func count(_ size: Int, line: Int) throws(YAMLError) {
            nodes += size
            guard nodes <= YAMLNode.maximumNodes else {
                throw YAMLError(line: line, message: "the document repeats (through aliases) more than \(YAMLNode.maximumNodes) nodes")
            }
        }

        private static func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            anchor.map { String(cString: $0) }
        }
    }
}
