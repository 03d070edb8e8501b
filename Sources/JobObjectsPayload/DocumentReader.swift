import JobObjects
/// Reads a YAML or JSON document node by node, remembering the line of
/// every field and collecting every problem instead of stopping at the
/// first: unknown keys (with a suggestion), duplicate keys, wrong types.
/// Shared by the payload spec and the seccomp profile readers.
struct DocumentReader {
    let file: String
    private(set) var problems: [PayloadProblem] = []
    private(set) var lines: [String: Int] = [:]

    init(file: String) { self.file = file }

    /// Parses `text`. JSON is read as YAML (a flow document); raw tabs,
    /// which JSON allows between tokens and YAML does not everywhere, become
    /// spaces (inside a JSON string a tab must be escaped, so none is there).
    mutating func parse(_ text: String) -> YAMLNode? {
        let trimmed = text.drop { $0.isWhitespace }
        let source = (trimmed.first == "{" || trimmed.first == "[") ? String(text.map { $0 == "\t" ? " " : $0 }) : text
        do {
            guard let node = try YAMLNode.compose(source) else {
                report("", line: nil, "the document is empty")
                return nil
            }
            return node
        } catch {
            report("", line: error.line, "not valid YAML or JSON: \(error.message)")
            return nil
        }
    }

    mutating func report(_ field: String, line: Int?, _ message: String) {
        problems.append(PayloadProblem(field: field, file: file, line: line, message: message))
    }

    /// Reports at the line `field` was read from, else at `node`'s.
    mutating func report(_ field: String, _ node: YAMLNode?, _ message: String) {
        report(field, line: lines[field] ?? node?.line, message)
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
    static func index(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }

    /// The entries of a mapping whose keys are all in `keys`; an unknown or
    /// repeated key is reported with its line. Null values count as absent.
    mutating func mapping(_ node: YAMLNode, _ path: String, keys: [String]) -> [String: YAMLNode]? {
        lines[path] = lines[path] ?? node.line
        guard case .mapping(let mapping, _) = node else {
            report(path, node, "expected a mapping (key: value lines or {…}), found \(Self.kind(of: node))")
            return nil
        }
        var entries: [String: YAMLNode] = [:]
        var seen = Set<String>()
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                report(path, key, "keys must be plain names")
                continue
            }
            let name = scalar.string
            let field = Self.join(path, name)
            if !keys.contains(name) {
                var message = "unknown key \"\(name)\""
                if let guess = Self.closest(to: name, in: keys) { message += " (did you mean \"\(guess)\"?)" }
                message += "; \(path.isEmpty ? "the document" : path) accepts: \(keys.joined(separator: ", "))"
                report(field, line: key.line, message)
                continue
            }
            guard seen.insert(name).inserted else {
                report(field, line: key.line, "\"\(name)\" is given twice")
                continue
            }
            lines[field] = value.line
            if case .scalar(let scalar) = value, scalar.kind == .null { continue }
            entries[name] = value
        }
        return entries
    }

    /// The entries of a mapping whatever their keys (an OCI config must
    /// skip properties it does not know); a repeated key is reported.
    mutating func openMapping(_ node: YAMLNode, _ path: String) -> [String: YAMLNode]? {
        guard let entries = orderedMapping(node, path) else { return nil }
        return Dictionary(entries, uniquingKeysWith: { first, _ in first })
    }

    /// The entries of a mapping in file order, keys as plain strings; a
    /// repeated key is reported and its later values dropped.
    mutating func orderedMapping(_ node: YAMLNode, _ path: String) -> [(String, YAMLNode)]? {
        lines[path] = lines[path] ?? node.line
        guard case .mapping(let mapping, _) = node else {
            report(path, node, "expected a mapping ({…}), found \(Self.kind(of: node))")
            return nil
        }
        var entries: [(String, YAMLNode)] = []
        var seen = Set<String>()
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                report(path, key, "keys must be plain names")
                continue
            }
            let field = Self.join(path, scalar.string)
            guard seen.insert(scalar.string).inserted else {
                report(field, line: key.line, "\"\(scalar.string)\" is given twice")
                continue
            }
            lines[field] = value.line
            if case .scalar(let scalar) = value, scalar.kind == .null { continue }
            entries.append((scalar.string, value))
        }
        return entries
    }

    mutating func sequence(_ node: YAMLNode, _ path: String) -> [YAMLNode]? {
        lines[path] = lines[path] ?? node.line
        guard case .sequence(let items, _) = node else {
            report(path, node, "expected a list (- item lines or […]), found \(Self.kind(of: node))")
            return nil
        }
        for (i, item) in items.enumerated() { lines[Self.index(path, i)] = item.line }
        return items
    }

    /// A scalar's text exactly as written (numbers and booleans too, so
    /// `args: [--port, 80]` means "80").
    mutating func string(_ node: YAMLNode, _ path: String) -> String? {
        lines[path] = lines[path] ?? node.line
        guard case .scalar(let scalar) = node else {
            report(path, node, "expected a string, found \(Self.kind(of: node))")
            return nil
        }
        return scalar.string
    }

    mutating func strings(_ node: YAMLNode, _ path: String) -> [String]? {
        guard let items = sequence(node, path) else { return nil }
        var values: [String] = []
        var ok = true
        for (i, item) in items.enumerated() {
            if let value = string(item, Self.index(path, i)) { values.append(value) } else { ok = false }
        }
        return ok ? values : nil
    }

    mutating func int(_ node: YAMLNode, _ path: String) -> Int? {
        lines[path] = lines[path] ?? node.line
        guard case .scalar(let scalar) = node, scalar.kind == .int, let value = scalar.int else {
            report(path, node, "expected a whole number, found \(Self.kind(of: node))")
            return nil
        }
        return value
    }

    /// A whole number that may exceed Int64 (seccomp argument values).
    mutating func uint64(_ node: YAMLNode, _ path: String) -> UInt64? {
        lines[path] = lines[path] ?? node.line
        if case .scalar(let scalar) = node, let value = scalar.uint64 { return value }
        report(path, node, "expected a whole number from 0 to 18446744073709551615, found \(Self.kind(of: node))")
        return nil
    }

    mutating func bool(_ node: YAMLNode, _ path: String) -> Bool? {
        lines[path] = lines[path] ?? node.line
        guard case .scalar(let scalar) = node, let value = scalar.bool else {
            report(path, node, "expected true or false, found \(Self.kind(of: node))")
            return nil
        }
        return value
    }

    static func kind(of node: YAMLNode) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar):
            switch scalar.kind {
            case .int, .float: return "the number \(scalar.string)"
            case .bool: return "the boolean \(scalar.string)"
            case .null: return "nothing"
            case .string: return "the string \(quotedForMessage(scalar.string))"
            }
        }
    }

    /// The accepted key nearest to a misspelt one (case or up to two edits).
    static func closest(to name: String, in keys: [String]) -> String? {
        if let exact = keys.first(where: { $0.lowercased() == name.lowercased() }) { return exact }
        let scored = keys.map { ($0, editDistance(Array(name.lowercased()), Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return nil }
        return best.0
    }

    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
