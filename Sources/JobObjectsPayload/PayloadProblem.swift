import JobObjects
/// One thing wrong with a payload spec or a seccomp profile: the field it
/// is in, where in the file, and what to do about it.
public struct PayloadProblem: Sendable, Hashable, CustomStringConvertible {
    /// The field's path, e.g. `securityContext.capabilities.add[1]`.
    public var field: String
    /// The file it came from, when it came from one.
    public var file: String?
    /// The line in `file`, starting at 1, when known.
    public var line: Int?
    /// What is wrong and how to fix it.
    public var message: String

    /// A problem with `field`, at `file`:`line` when known.
    public init(field: String, file: String? = nil, line: Int? = nil, message: String) {
        self.field = field
        self.file = file
        self.line = line
        self.message = message
    }

    /// `spec.yaml:12: securityContext.runAsUser: no user named "nobdy"`.
    public var description: String {
        var place = file ?? ""
        if let line { place += (place.isEmpty ? "line " : ":") + String(line) }
        let field = field.isEmpty ? "(document)" : field
        return place.isEmpty ? "\(field): \(message)" : "\(place): \(field): \(message)"
    }
}

extension [PayloadProblem] {
    /// One error that lists every problem, in file order.
    func error(operation: String, subject: String, path: String?) -> JobObjectError {
        let sorted = self.enumerated().sorted { a, b in
            (a.element.line ?? Int.max, a.offset) < (b.element.line ?? Int.max, b.offset)
        }.map(\.element)
        let header = sorted.count == 1 ? "\(subject) has a problem:" : "\(subject) has \(sorted.count) problems:"
        let message = ([header] + sorted.map { "  " + $0.description }).joined(separator: "\n")
        return JobObjectError(.invalidArgument, message, operation: operation, path: path)
    }
}
