/// A runc-style command line: long flags with one dash or two, each as
/// `--flag value` or `--flag=value`; a boolean flag may be `--flag=false`.
/// Flags and positionals mix until `--`. What the engines' runtime
/// clients (containerd's go-runc, podman's libpod, conmon) write.
struct OCIArguments {
    private(set) var values: [String: String] = [:]
    private(set) var booleans: Set<String> = []
    private(set) var positionals: [String] = []

    /// `valued` flags take a value; `switches` are booleans; `aliases`
    /// maps short names to long ones. Anything else is an error. With
    /// `commandAfterID`, everything after the first positional (the id) is
    /// positional: a command and its own flags (`exec ID ls -l`).
    init(
        _ arguments: ArraySlice<String>, valued: Set<String>, switches: Set<String>, aliases: [String: String] = [:],
        commandAfterID: Bool = false
    ) throws(OCIRuntimeError) {
        var rest = arguments
        while let argument = rest.popFirst() {
            if argument == "--" {
                positionals += rest
                break
            }
            guard argument.hasPrefix("-"), argument.count > 1 else {
                positionals.append(argument)
                if commandAfterID {
                    positionals += rest
                    break
                }
                continue
            }
            var name = String(argument.drop { $0 == "-" })
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            name = aliases[name] ?? name
            if valued.contains(name) {
                guard let value = inline ?? rest.popFirst() else { throw OCIRuntimeError("flag --\(name) needs a value") }
                values[name] = value
            } else if switches.contains(name) {
                switch inline {
                case nil, "true": booleans.insert(name)
                case "false": booleans.remove(name)
                default: throw OCIRuntimeError("flag --\(name) is true or false, not \"\(inline!)\"")
                }
            } else {
                throw OCIRuntimeError("unknown flag \(argument)")
            }
        }
    }

    subscript(_ name: String) -> String? { values[name] }

    func has(_ name: String) -> Bool { booleans.contains(name) }

    /// The container id: the one positional a command takes.
    func containerID(_ command: String) throws(OCIRuntimeError) -> String {
        guard let id = positionals.first else { throw OCIRuntimeError("\(command) needs a container id") }
        try OCIContainerID.check(id)
        return id
    }
}

/// A container id as the engines make them (64 hex digits, names): the
/// characters runc allows, so it is also a safe file and cgroup name.
enum OCIContainerID {
    static let maximumLength = 1024

    static func check(_ id: String) throws(OCIRuntimeError) {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "+")
        }
        guard allowed, !id.isEmpty, id != ".", id != "..", id.utf8.count <= maximumLength else {
            throw OCIRuntimeError(
                "invalid container id \"\(id.prefix(80))\": use letters, digits, _ + - . (at most \(maximumLength))")
        }
    }
}
