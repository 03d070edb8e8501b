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

/// Why a document could not be composed, and where.
struct YAMLError: Error {
    let line: Int?
    let message: String
}

extension YAMLNode {
    /// Limits on what one document may expand to: aliases can nest a node
    /// in itself or repeat it exponentially ("billion laughs").
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
            var document = yaml_document_t()
            guard yaml_parser_load(&parser, &document) != 0 else { throw error(of: parser) }
            defer { yaml_document_delete(&document) }
            guard let root = yaml_document_get_root_node(&document) else { return nil }
            let node = try withUnsafeMutablePointer(to: &document) { pointer throws(YAMLError) in
                var composer = Composer(document: pointer)
                return try composer.node(root, depth: 0)
            }
            var next = yaml_document_t()
            guard yaml_parser_load(&parser, &next) != 0 else { throw error(of: parser) }
            defer { yaml_document_delete(&next) }
            if let extra = yaml_document_get_root_node(&next) {
                throw YAMLError(line: Int(extra.pointee.start_mark.line) + 1, message: "a second document starts here; give one document")
            }
            return node
        }
    }

    private static func error(of parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        let context = parser.context.map { String(cString: $0) + " " } ?? ""
        return YAMLError(line: Int(parser.problem_mark.line) + 1, message: context + problem)
    }

    /// Turns libyaml's node table into `YAMLNode`s.
    private struct Composer {
        let document: UnsafeMutablePointer<yaml_document_t>
        var count = 0

        mutating func node(_ node: UnsafeMutablePointer<yaml_node_t>, depth: Int) throws(YAMLError) -> YAMLNode {
            let line = Int(node.pointee.start_mark.line) + 1
            count += 1
            guard depth < YAMLNode.maximumDepth, count <= YAMLNode.maximumNodes else {
                throw YAMLError(line: line, message: "the document nests or repeats (through aliases) too much")
            }
            switch node.pointee.type {
            case YAML_SCALAR_NODE:
                let scalar = node.pointee.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                return .scalar(YAMLScalar(string: text, isPlain: scalar.style == YAML_PLAIN_SCALAR_STYLE, line: line))
            case YAML_SEQUENCE_NODE:
                var items: [YAMLNode] = []
                var item = node.pointee.data.sequence.items.start
                while item != node.pointee.data.sequence.items.top {
                    items.append(try self.node(at: item!.pointee, depth: depth + 1))
                    item = item! + 1
                }
                return .sequence(items, line: line)
            case YAML_MAPPING_NODE:
                var pairs: [(key: YAMLNode, value: YAMLNode)] = []
                var pair = node.pointee.data.mapping.pairs.start
                while pair != node.pointee.data.mapping.pairs.top {
                    pairs.append(
                        (
                            try self.node(at: pair!.pointee.key, depth: depth + 1),
                            try self.node(at: pair!.pointee.value, depth: depth + 1)
                        ))
                    pair = pair! + 1
                }
                return .mapping(pairs, line: line)
            default:
                throw YAMLError(line: line, message: "an empty node")
            }
        }

        mutating func node(at index: Int32, depth: Int) throws(YAMLError) -> YAMLNode {
            guard let child = yaml_document_get_node(document, index) else {
                throw YAMLError(line: nil, message: "a node refers to a node that does not exist")
            }
            return try node(child, depth: depth)
        }
    }
}
