import ArgumentParser

/// One command-line option, declared once: its name, what it takes, its help,
/// and how it stores a value into a `RunRequest`. `FlagParser` reads a
/// command line with a list of these and `FlagHelp` prints them; `jobsup
/// run` and `jobsup limits` get all their options this way (see `RunFlags`).
/// Not generic on purpose: `jobsup run` parses before anything else, and a
/// generic type's metadata is built at run time on first use.
struct CommandFlag: Sendable {
    let name: String
    let arity: FlagArity
    /// What the value is, in the help: `<size>`.
    let valueName: String
    let help: String
    /// Stores the value (empty for `.none`); throws when it is not one the
    /// option takes. Checks that need other options come later
    /// (`RunRequest.validate`).
    let store: @Sendable (inout RunRequest, String) throws(ValidationError) -> Void

    /// An option that takes no value.
    static func flag(_ name: String, help: String, _ set: @escaping @Sendable (inout RunRequest) -> Void) -> CommandFlag {
        CommandFlag(name: name, arity: .none, valueName: "", help: help) { root, _ in set(&root) }
    }

    /// An option that takes a value once.
    static func option(
        _ name: String, _ valueName: String, help: String,
        _ store: @escaping @Sendable (inout RunRequest, String) throws(ValidationError) -> Void
    ) -> CommandFlag {
        CommandFlag(name: name, arity: .one, valueName: valueName, help: help, store: store)
    }

    /// An option that takes a value and may be given any number of times.
    static func repeated(
        _ name: String, _ valueName: String, help: String,
        _ store: @escaping @Sendable (inout RunRequest, String) throws(ValidationError) -> Void
    ) -> CommandFlag {
        CommandFlag(name: name, arity: .repeated, valueName: valueName, help: help, store: store)
    }
}

/// How many values an option takes.
enum FlagArity: Sendable {
    /// `--stats`: no value.
    case none
    /// `--name web` or `--name=web`, at most once.
    case one
    /// `--rlimit a=1 --rlimit b=2`: any number of times.
    case repeated
}

/// A titled group of options, for the help.
struct FlagSection: Sendable {
    let title: String
    let flags: [CommandFlag]
}

/// Reads options from a command line with their declarations.
enum FlagParser {
    /// Options until `--` or the first argument that is not one; returns
    /// what follows (the command). `--opt value`, `--opt=value` and flags.
    static func parse(
        _ arguments: ArraySlice<String>, _ flags: [CommandFlag],
        into root: inout RunRequest
    ) throws(ValidationError) -> [String] {
        // A few dozen options: a search costs less than building a table.
        func named(_ name: String) -> CommandFlag? { flags.first { $0.name == name } }
        var seen: [String] = []
        var rest = arguments
        while let argument = rest.first {
            rest = rest.dropFirst()
            if argument == "--" { return Array(rest) }
            guard argument.hasPrefix("-"), argument != "-" else { return [argument] + rest }
            var name = argument
            var attached: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                attached = String(argument[argument.index(after: equals)...])
            }
            guard let flag = named(name) else {
                throw ValidationError("Unknown option '\(quotedName(name))' (the command goes after --)")
            }
            guard flag.arity == .repeated || !seen.contains(name) else {
                throw ValidationError("\(name) is given twice; give it once")
            }
            seen.append(name)
            switch flag.arity {
            case .none:
                if attached != nil { throw ValidationError("\(name) takes no value") }
                try flag.store(&root, "")
            case .one, .repeated:
                let value: String
                if let attached {
                    value = attached
                } else {
                    // A value may start with '-' ("--success-exit=-1" aside, a
                    // negative number); an option name may not be a value.
                    guard let next = rest.first, next != "--", named(next) == nil else {
                        throw ValidationError("\(name) needs a value: \(name) <\(flag.valueName)>")
                    }
                    value = next
                    rest = rest.dropFirst()
                }
                try flag.store(&root, value)
            }
        }
        return []
    }

    private static func quotedName(_ name: String) -> String {
        name.count > 64 ? String(name.prefix(64)) + "…" : name
    }
}

/// The options' help, in ArgumentParser's layout.
enum FlagHelp {
    static func text(_ sections: [FlagSection]) -> String {
        sections.map { section in
            section.title.uppercased() + ":\n" + section.flags.map(line).joined(separator: "\n")
        }.joined(separator: "\n\n")
    }

    private static func line(_ flag: CommandFlag) -> String {
        let usage = flag.arity == .none ? flag.name : "\(flag.name) <\(flag.valueName)>"
        let repeated = flag.arity == .repeated ? " (repeatable)" : ""
        return "  \(usage)\n" + wrapped(flag.help + repeated, indent: 8, width: 79)
    }

    /// Lines of at most `width` columns, each indented: ArgumentParser then
    /// prints them as they are.
    static func wrapped(_ text: String, indent: Int, width: Int) -> String {
        let margin = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && indent + line.count + 1 + word.count > width {
                lines.append(margin + line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(margin + line) }
        return lines.joined(separator: "\n")
    }
}
