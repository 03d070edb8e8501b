import CJobShim
import CJobShimPayload
import JobObjects
import Glibc
import SystemPackage

/// A seccomp profile in the OCI/Docker JSON format: `defaultAction`,
/// `defaultErrnoRet`, `architectures`, `archMap`, and `syscalls` entries
/// with `names`, `action`, `errnoRet`, `args` and Docker's conditional
/// `includes`/`excludes` (`caps`, `arches`, `minKernel`).
///
/// Reading checks every entry — unknown keys, actions, operators,
/// architectures and system-call names (as libseccomp knows them) — and
/// reports all problems with their entry and line. `compile` builds the
/// filter with libseccomp in this process and exports it as BPF.
public struct SeccompProfile: Sendable, Hashable {
    /// What a system call no rule names gets.
    public var defaultAction: Action
    /// SCMP_ARCH_* names; the native architecture is always included.
    public var architectures: [String]
    /// The rules, in the profile's order.
    public var syscalls: [Rule]

    /// A profile as values (OCI names for architectures).
    public init(defaultAction: Action, architectures: [String] = [], syscalls: [Rule] = []) {
        self.defaultAction = defaultAction
        self.architectures = architectures
        self.syscalls = syscalls
    }

    /// What a matching system call gets.
    public enum Action: Sendable, Hashable {
        case killThread, killProcess, trap
        case errno(UInt32)
        case trace(UInt32)
        case allow, log

        var shim: (kind: CInt, data: UInt32) {
            switch self {
            case .killThread: (CInt(JOBSHIM_SCMP_KILL_THREAD), 0)
            case .killProcess: (CInt(JOBSHIM_SCMP_KILL_PROCESS), 0)
            case .trap: (CInt(JOBSHIM_SCMP_TRAP), 0)
            case .errno(let value): (CInt(JOBSHIM_SCMP_ERRNO), value)
            case .trace(let value): (CInt(JOBSHIM_SCMP_TRACE), value)
            case .allow: (CInt(JOBSHIM_SCMP_ALLOW), 0)
            case .log: (CInt(JOBSHIM_SCMP_LOG), 0)
            }
        }
    }

    /// An action for some system calls, maybe only for some arguments, capabilities or architectures.
    public struct Rule: Sendable, Hashable {
        /// The system calls, by name.
        public var names: [String]
        /// What they get.
        public var action: Action
        /// Conditions on their arguments (all must hold).
        public var args: [Argument]
        /// Docker's conditions: the rule applies only when these hold.
        public var includes: Condition
        /// When the rule does not apply.
        public var excludes: Condition
        /// Where the rule was read, for messages ("syscalls[3]").
        var field: String = ""
        var line: Int?

        /// A rule as values.
        public init(
            names: [String], action: Action, args: [Argument] = [], includes: Condition = Condition(), excludes: Condition = Condition()
        ) {
            self.names = names
            self.action = action
            self.args = args
            self.includes = includes
            self.excludes = excludes
        }
    }

    /// A condition on one system-call argument.
    public struct Argument: Sendable, Hashable {
        /// How the argument is compared (the OCI names).
        public enum Operator: String, Sendable, Hashable, CaseIterable {
            case notEqual = "SCMP_CMP_NE"
            case lessThan = "SCMP_CMP_LT"
            case lessOrEqual = "SCMP_CMP_LE"
            case equal = "SCMP_CMP_EQ"
            case greaterOrEqual = "SCMP_CMP_GE"
            case greaterThan = "SCMP_CMP_GT"
            case maskedEqual = "SCMP_CMP_MASKED_EQ"

            var shim: CInt {
                switch self {
                case .notEqual: CInt(JOBSHIM_SCMP_CMP_NE)
                case .lessThan: CInt(JOBSHIM_SCMP_CMP_LT)
                case .lessOrEqual: CInt(JOBSHIM_SCMP_CMP_LE)
                case .equal: CInt(JOBSHIM_SCMP_CMP_EQ)
                case .greaterOrEqual: CInt(JOBSHIM_SCMP_CMP_GE)
                case .greaterThan: CInt(JOBSHIM_SCMP_CMP_GT)
                case .maskedEqual: CInt(JOBSHIM_SCMP_CMP_MASKED_EQ)
                }
            }
        }
        /// Which argument, 0 to 5.
        public var index: UInt32
        /// The value compared with.
        public var value: UInt64
        /// The second operand of `SCMP_CMP_MASKED_EQ`.
        public var valueTwo: UInt64
        /// The comparison.
        public var op: Operator
        /// A condition as values.
        public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: Operator) {
            self.index = index
            self.value = value
            self.valueTwo = valueTwo
            self.op = op
        }
    }

    /// Capabilities, architectures or a kernel version a rule depends on.
    public struct Condition: Sendable, Hashable {
        /// Capability names (CAP_…).
        public var caps: [String] = []
        /// Architecture names as Docker writes them (amd64, arm64, …).
        public var arches: [String] = []
        /// "4.8": the running kernel must be at least this.
        public var minKernel: String?
        /// A condition as values.
        public init(caps: [String] = [], arches: [String] = [], minKernel: String? = nil) {
            self.caps = caps
            self.arches = arches
            self.minKernel = minKernel
        }
        var isEmpty: Bool { caps.isEmpty && arches.isEmpty && minKernel == nil }
    }

    // MARK: Reading

    /// The largest profile file read: Docker's default profile is about
    /// 20 KB; this leaves room for profiles generated per syscall.
    public static let maximumFileSize = 4 << 20

    /// Reads a profile file (a regular file of UTF-8 text of at most
    /// `maximumFileSize` bytes); every problem is reported at once, each
    /// naming its entry and line.
    public static func load(path filePath: FilePath) throws(JobObjectError) -> SeccompProfile {
        let path = filePath.string
        let (profile, problems) = read(path: path)
        if let profile, problems.isEmpty { return profile }
        throw problems.error(operation: "load seccomp profile", subject: "seccomp profile \(path)", path: path)
    }

    /// Parses profile text (JSON, or YAML of the same shape).
    public static func decode(json: String, file: String = "profile") throws(JobObjectError) -> SeccompProfile {
        let (profile, problems) = read(json, file: file)
        if let profile, problems.isEmpty { return profile }
        throw problems.error(operation: "load seccomp profile", subject: "seccomp profile \(file)", path: file)
    }

    static func read(path: String) -> (SeccompProfile?, [PayloadProblem]) {
        switch UserFile.read(path, what: "seccomp profile", limit: maximumFileSize) {
        case .success(let text): return read(text, file: path)
        case .failure(let error): return (nil, [PayloadProblem(field: "", file: path, message: error.message)])
        }
    }

    static let topKeys = [
        "defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls", "flags",
        "listenerPath", "listenerMetadata",
    ]

    static func read(_ text: String, file: String) -> (SeccompProfile?, [PayloadProblem]) {
        var d = DocumentReader(file: file)
        guard let root = d.parse(text), let top = d.mapping(root, "", keys: topKeys) else { return (nil, d.problems) }
        let defaultErrno = top["defaultErrnoRet"].flatMap { readErrno(&d, $0, "defaultErrnoRet") }
        var defaultAction: Action?
        if let node = top["defaultAction"] {
            defaultAction = readAction(&d, node, "defaultAction", errnoRet: defaultErrno)
        } else {
            d.report("defaultAction", root, "is required (e.g. SCMP_ACT_ERRNO or SCMP_ACT_ALLOW)")
        }
        if top["listenerPath"] != nil || top["listenerMetadata"] != nil {
            d.report(
                "listenerPath", top["listenerPath"] ?? top["listenerMetadata"],
                "seccomp user notification (SCMP_ACT_NOTIFY) is not supported")
        }
        if let node = top["flags"], let flags = d.strings(node, "flags") {
            for (i, flag) in flags.enumerated() where flag != "SECCOMP_FILTER_FLAG_TSYNC" {
                d.report(
                    DocumentReader.index("flags", i), node,
                    "\(flag) is not supported (the filter is loaded with prctl, which takes no flags)")
            }
        }

        var architectures: [String] = []
        if let node = top["architectures"], let names = d.strings(node, "architectures") {
            for (i, name) in names.enumerated() {
                if archToken(name) == nil {
                    d.report(
                        DocumentReader.index("architectures", i), node,
                        "unknown architecture \"\(name)\" (e.g. SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64)")
                } else {
                    architectures.append(name)
                }
            }
        }
        if let node = top["archMap"], let items = d.sequence(node, "archMap") {
            let native = jobshim_seccomp_native_arch()
            for (i, item) in items.enumerated() {
                let field = DocumentReader.index("archMap", i)
                guard let entry = d.mapping(item, field, keys: ["architecture", "subArchitectures"]) else { continue }
                guard let archNode = entry["architecture"], let arch = d.string(archNode, field + ".architecture") else {
                    if entry["architecture"] == nil { d.report(field + ".architecture", item, "is required") }
                    continue
                }
                let subs = entry["subArchitectures"].flatMap { d.strings($0, field + ".subArchitectures") } ?? []
                for (name, f) in [(arch, field + ".architecture")]
                    + subs.enumerated().map({ ($1, DocumentReader.index(field + ".subArchitectures", $0)) })
                where archToken(name) == nil {
                    d.report(f, item, "unknown architecture \"\(name)\"")
                }
                if archToken(arch) == native { architectures += [arch] + subs.filter { archToken($0) != nil } }
            }
        }

        var rules: [Rule] = []
        if let node = top["syscalls"], let items = d.sequence(node, "syscalls") {
            for (i, item) in items.enumerated() {
                if let rule = readRule(&d, item, DocumentReader.index("syscalls", i)) { rules.append(rule) }
            }
        }
        guard let defaultAction, d.problems.isEmpty else { return (nil, d.problems) }
        return (SeccompProfile(defaultAction: defaultAction, architectures: architectures, syscalls: rules), [])
    }

    static let ruleKeys = ["names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"]

    private static func readRule(_ d: inout DocumentReader, _ node: YAMLNode, _ field: String) -> Rule? {
        guard let entry = d.mapping(node, field, keys: ruleKeys) else { return nil }
        var names: [String] = []
        if let n = entry["names"], let list = d.strings(n, field + ".names") {
            names = list
            if list.isEmpty { d.report(field + ".names", n, "is empty; list the system calls this rule is for") }
            for (i, name) in list.enumerated() where jobshim_seccomp_resolve_syscall(name) == Int32.min {
                d.report(DocumentReader.index(field + ".names", i), n, "unknown system call \"\(name)\" (libseccomp does not know it)")
            }
        }
        if let n = entry["name"], let name = d.string(n, field + ".name") {
            names.append(name)
            if jobshim_seccomp_resolve_syscall(name) == Int32.min {
                d.report(field + ".name", n, "unknown system call \"\(name)\" (libseccomp does not know it)")
            }
        }
        if entry["names"] == nil && entry["name"] == nil {
            d.report(field + ".names", node, "is required: the system calls this rule is for")
        }
        let errnoRet = entry["errnoRet"].flatMap { readErrno(&d, $0, field + ".errnoRet") }
        var action: Action?
        if let n = entry["action"] {
            action = readAction(&d, n, field + ".action", errnoRet: errnoRet)
        } else {
            d.report(field + ".action", node, "is required (e.g. SCMP_ACT_ERRNO)")
        }
        if let errnoRet, let action {
            switch action {
            case .errno, .trace: break
            default:
                _ = errnoRet
                d.report(field + ".errnoRet", entry["errnoRet"], "is only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
            }
        }
        var args: [Argument] = []
        if let n = entry["args"], let items = d.sequence(n, field + ".args") {
            for (i, item) in items.enumerated() {
                let f = DocumentReader.index(field + ".args", i)
                guard let a = d.mapping(item, f, keys: ["index", "value", "valueTwo", "op"]) else { continue }
                let index = a["index"].flatMap { d.int($0, f + ".index") }
                let value = a["value"].flatMap { d.uint64($0, f + ".value") } ?? 0
                let valueTwo = a["valueTwo"].flatMap { d.uint64($0, f + ".valueTwo") } ?? 0
                let opText = a["op"].flatMap { d.string($0, f + ".op") }
                if a["index"] == nil { d.report(f + ".index", item, "is required (0…5)") }
                if a["op"] == nil { d.report(f + ".op", item, "is required (e.g. SCMP_CMP_EQ)") }
                if let index, !(0...5).contains(index) {
                    d.report(f + ".index", a["index"], "must be 0…5 (a system call has six arguments)")
                }
                let op = opText.flatMap { Argument.Operator(rawValue: $0) }
                if let opText, op == nil {
                    d.report(
                        f + ".op", a["op"],
                        "unknown operator \"\(opText)\": use one of \(Argument.Operator.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if let index, (0...5).contains(index), let op {
                    args.append(Argument(index: UInt32(index), value: value, valueTwo: valueTwo, op: op))
                }
            }
        }
        let includes = entry["includes"].flatMap { readCondition(&d, $0, field + ".includes") } ?? Condition()
        let excludes = entry["excludes"].flatMap { readCondition(&d, $0, field + ".excludes") } ?? Condition()
        if excludes.minKernel != nil {
            d.report(field + ".excludes.minKernel", entry["excludes"], "minKernel is only meaningful in includes")
        }
        guard let action else { return nil }
        var rule = Rule(names: names, action: action, args: args, includes: includes, excludes: excludes)
        rule.field = field
        rule.line = node.line
        return rule
    }

    private static func readCondition(_ d: inout DocumentReader, _ node: YAMLNode, _ field: String) -> Condition? {
        guard let entry = d.mapping(node, field, keys: ["caps", "arches", "minKernel"]) else { return nil }
        var condition = Condition()
        if let n = entry["caps"], let caps = d.strings(n, field + ".caps") {
            for (i, cap) in caps.enumerated() {
                do { _ = try Capability(name: cap) } catch {
                    d.report(DocumentReader.index(field + ".caps", i), n, error.message)
                }
            }
            condition.caps = caps
        }
        if let n = entry["arches"], let arches = d.strings(n, field + ".arches") { condition.arches = arches }
        if let n = entry["minKernel"], let text = d.string(n, field + ".minKernel") {
            if kernelVersion(text) == nil { d.report(field + ".minKernel", n, "expected a kernel version such as 4.8") }
            condition.minKernel = text
        }
        return condition
    }

    private static func readErrno(_ d: inout DocumentReader, _ node: YAMLNode, _ field: String) -> UInt32? {
        guard let value = d.int(node, field) else { return nil }
        guard (0...4095).contains(value) else {
            d.report(field, node, "must be an errno, 0…4095 (e.g. 1 for EPERM, 13 for EACCES)")
            return nil
        }
        return UInt32(value)
    }

    private static func readAction(_ d: inout DocumentReader, _ node: YAMLNode, _ field: String, errnoRet: UInt32?) -> Action? {
        guard let name = d.string(node, field) else { return nil }
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return .killThread
        case "SCMP_ACT_KILL_PROCESS": return .killProcess
        case "SCMP_ACT_TRAP": return .trap
        case "SCMP_ACT_ERRNO": return .errno(errnoRet ?? UInt32(EPERM))
        case "SCMP_ACT_TRACE": return .trace(errnoRet ?? UInt32(EPERM))
        case "SCMP_ACT_ALLOW": return .allow
        case "SCMP_ACT_LOG": return .log
        case "SCMP_ACT_NOTIFY":
            d.report(field, node, "SCMP_ACT_NOTIFY needs a seccomp agent, which is not supported")
            return nil
        default:
            d.report(
                field, node,
                "unknown action \"\(name)\": use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG"
            )
            return nil
        }
    }

    /// "SCMP_ARCH_X86_64" → libseccomp's token for "x86_64".
    static func archToken(_ name: String) -> UInt32? {
        let bare = name.hasPrefix("SCMP_ARCH_") ? String(name.dropFirst(10)) : name
        let token = jobshim_seccomp_resolve_arch(bare.lowercased())
        return token == 0 ? nil : token
    }

    static func kernelVersion(_ text: String) -> [Int]? {
        let numbers = text.split(separator: ".").prefix(2).map { Int($0.prefix { $0.isNumber }) }
        guard numbers.count == 2, numbers.allSatisfy({ $0 != nil }) else { return nil }
        return numbers.compactMap { $0 }
    }

    // MARK: Compiling

    /// Builds the filter with libseccomp for this machine: Docker's
    /// `includes`/`excludes` are decided against `capabilities` (the
    /// payload's bounding set), the native architecture and the running
    /// kernel; rules whose action is the default are left out; a rule with
    /// two conditions on one argument becomes one rule per condition (as
    /// runc does, since libseccomp refuses it).
    public func compile(capabilities: Set<Capability>) throws(JobObjectError) -> SeccompFilter {
        var arches = [jobshim_seccomp_native_arch()]
        for name in architectures {
            guard let token = Self.archToken(name) else {
                throw JobObjectError(.invalidArgument, "unknown seccomp architecture \(name)", operation: "compile seccomp profile")
            }
            if !arches.contains(token) { arches.append(token) }
        }
        struct Flat {
            var syscall: CInt
            var action: Action
            var args: [Argument]
            var rule: Rule
            var name: String
        }
        var flat: [Flat] = []
        for rule in syscalls where applies(rule, capabilities: capabilities) {
            for name in rule.names {
                let number = jobshim_seccomp_resolve_syscall(name)
                guard number != Int32.min else {
                    throw JobObjectError(
                        .invalidArgument, "\(rule.field): unknown system call \"\(name)\"", operation: "compile seccomp profile")
                }
                let indexes = rule.args.map(\.index)
                if Set(indexes).count == indexes.count {
                    flat.append(Flat(syscall: number, action: rule.action, args: rule.args, rule: rule, name: name))
                } else {
                    for arg in rule.args { flat.append(Flat(syscall: number, action: rule.action, args: [arg], rule: rule, name: name)) }
                }
            }
        }
        let shimArgs: [[jobshim_seccomp_arg]] = flat.map { entry in
            entry.args.map { jobshim_seccomp_arg(index: $0.index, op: $0.op.shim, value: $0.value, value_two: $0.valueTwo) }
        }
        var failedRule: CInt = -1
        var program: UnsafeMutablePointer<UInt8>?
        var length = 0
        let rc: CInt = withArrays(shimArgs) { argPointers in
            var rules: [jobshim_seccomp_rule] = []
            for (i, entry) in flat.enumerated() {
                let shim = entry.action.shim
                rules.append(
                    jobshim_seccomp_rule(
                        syscall: entry.syscall, action: shim.kind, action_data: shim.data,
                        args: argPointers[i], arg_count: CInt(entry.args.count)))
            }
            let defaultShim = defaultAction.shim
            let rc = jobshim_seccomp_compile(
                defaultShim.kind, defaultShim.data, arches, CInt(arches.count),
                rules, CInt(rules.count), &failedRule, &program, &length)
            return rc == 0 ? 0 : Glibc.errno
        }
        guard rc == 0, let program else {
            let errno = Errno(rawValue: rc)
            if failedRule >= 0, Int(failedRule) < flat.count {
                let entry = flat[Int(failedRule)]
                throw JobObjectError(
                    .invalidArgument, "libseccomp refused \(entry.rule.field) for \"\(entry.name)\"",
                    operation: "compile seccomp profile", errno: errno)
            }
            throw JobObjectError(
                .systemCallFailed, "libseccomp could not build or export the filter", operation: "compile seccomp profile", errno: errno)
        }
        defer { free(program) }
        return try SeccompFilter(program: Array(UnsafeBufferPointer(start: program, count: length)))
    }

    /// Docker's conditions, against this machine and the payload's capabilities.
    func applies(_ rule: Rule, capabilities: Set<Capability>) -> Bool {
        let names = Set(capabilities.map(\.name))
        func has(_ cap: String) -> Bool {
            let upper = cap.uppercased()
            return names.contains(upper.hasPrefix("CAP_") ? upper : "CAP_" + upper)
        }
        let machine = Self.nativeArchNames
        if !rule.includes.caps.isEmpty, !rule.includes.caps.allSatisfy(has) { return false }
        if rule.excludes.caps.contains(where: has) { return false }
        if !rule.includes.arches.isEmpty, !rule.includes.arches.contains(where: machine.contains) { return false }
        if rule.excludes.arches.contains(where: machine.contains) { return false }
        if let minimum = rule.includes.minKernel.flatMap(Self.kernelVersion), let running = Self.runningKernel,
            running.lexicographicallyPrecedes(minimum)
        {
            return false
        }
        return true
    }

    /// The names Docker profiles use for this machine's architecture.
    static var nativeArchNames: Set<String> {
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return ["x86_64", "amd64", "SCMP_ARCH_X86_64"]
        case "aarch64": return ["aarch64", "arm64", "SCMP_ARCH_AARCH64"]
        default: return [machine]
        }
    }

    static var runningKernel: [Int]? {
        var info = utsname()
        uname(&info)
        let release = withUnsafeBytes(of: info.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return kernelVersion(release)
    }
}

/// Runs `body` with a base pointer for each inner array (nil for empty ones).
private func withArrays<T, R>(_ arrays: [[T]], _ body: ([UnsafePointer<T>?]) -> R) -> R {
    let buffers = arrays.map { array -> UnsafeMutableBufferPointer<T>? in
        guard !array.isEmpty else { return nil }
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: array.count)
        _ = buffer.initialize(from: array)
        return buffer
    }
    defer { for buffer in buffers { buffer?.deallocate() } }
    return body(buffers.map { $0.map { UnsafePointer($0.baseAddress!) } })
}
