/// A compiled seccomp filter: classic BPF instructions (`struct
/// sock_filter`, 8 bytes each) for `prctl(PR_SET_SECCOMP,
/// SECCOMP_MODE_FILTER)`. Built in the parent — by `SeccompProfile.compile`
/// through libseccomp, or from bytes — and loaded by the spawned child just
/// before `execve`.
public struct SeccompFilter: Sendable, Hashable {
    static let instructionSize = 8
    /// BPF_MAXINSNS.
    static let maxInstructions = 4096

    /// The program, a whole number of `struct sock_filter`.
    public let program: [UInt8]

    /// Wraps a program exported elsewhere (e.g. by `seccomp_export_bpf`).
    public init(program: [UInt8]) throws(JobObjectError) {
        guard !program.isEmpty, program.count % Self.instructionSize == 0,
            program.count / Self.instructionSize <= Self.maxInstructions
        else {
            throw JobObjectError(
                .invalidArgument,
                "a seccomp program is 1 to \(Self.maxInstructions) instructions of \(Self.instructionSize) bytes; got \(program.count) bytes",
                operation: "load seccomp filter")
        }
        self.program = program
    }

    /// The number of BPF instructions.
    public var instructionCount: Int { program.count / Self.instructionSize }
}
