import Foundation
@testable import JobObjects
@testable import JobObjectsPayload
@testable import Supervisor
import Testing

/// Generated hostile input, hundreds of cases per run from fixed seeds (a
/// failure names its seed and input): command lines for `jobsup run`,
/// payload specs and seccomp profiles mutated from valid ones. Each case is
/// accepted or refused with a message that names the problem and fits on a
/// screen; none crashes the process (a trap here ends the whole test run)
/// and none hangs.
@Suite("generated hostile input")
struct InputFuzzTests {
    /// Values of every shape a user could type, good and bad.
    static let values = [
        "0", "1", "-1", "64", "512M", "1.5G", "2T", "1e16", "1e300", "-1e300", "0x10", "nan", "inf", "max", "unlimited",
        "500ms", "5s", "1.5m", "2h", "1e30s", "TERM", "SIGKILL", "64", "0-1,3", "1-", ",", "8:0:wbps=10M", "8:0", "nofile=1024",
        "nofile=unlimited", "cpu=1e16", "rtprio=99999", "=", "", " ", "\n", "é", "１０", String(repeating: "9", count: 5000),
        String(repeating: "x", count: 100_000), "notify", "kill", "json", "human", "a/b", "cpu.stat", "..", "TERM:QUIT", "143",
    ]

    @Test(arguments: 0..<4)
    func commandLines(_ seed: UInt64) {
        var random = SeededGenerator(seed: 1000 + seed)
        let flags = RunFlags.all
        for _ in 0..<150 {
            var arguments: [String] = []
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let flag = flags.randomElement(using: &random)!
                arguments.append(flag.name)
                if flag.arity != .none { arguments.append(Self.values.randomElement(using: &random)!) }
            }
            arguments += ["--", "true"]
            do {
                try RunFlags.parse(arguments[...]).validate()
            } catch {
                #expect(!error.message.isEmpty, "seed \(seed): \(arguments.map { $0.prefix(40) })")
                #expect(error.message.count < 600, "seed \(seed): \(arguments.map { $0.prefix(40) }): \(error.message.prefix(200))…")
            }
        }
    }

    static let validSpec = """
        name: fuzz
        payload: /tmp
        command: [/bin/sh, -c, "exit 0"]
        args: [a, b]
        env: [{name: A, value: "1"}]
        workingDir: /tmp
        resources:
          limits: {memory: 64Mi, cpu: 500m, pids: 64}
          requests: {memory: 16Mi, cpu: 100m}
        securityContext:
          runAsUser: root
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
        volumeMounts: [{name: data, mountPath: /data, hostPath: /tmp, readOnly: true}]
        terminationGracePeriodSeconds: 5

        """

    static let validProfile = """
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
         "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                       "args": [{"index": 1, "value": 448, "op": "SCMP_CMP_EQ"}]}]}

        """

    /// Pieces a mutation inserts: YAML syntax, numbers, deep nesting.
    static let pieces = [
        "{", "}", "[", "]", ":", "- ", "&a ", "*a", "!!binary ", "'", "\"", "\n  ", "\t", "1e300", "-1", "0x10", "null", "~",
        "[[[[[[[[[[", String(repeating: "[", count: 300), "\u{0}", "é", "999999999999999999999999",
    ]

    /// The starting points are valid: mutations reach past the first check.
    @Test func theStartingPointsAreValid() throws {
        _ = try PayloadSpec.decode(yaml: Self.validSpec)
        _ = try SeccompProfile.decode(json: Self.validProfile)
    }

    @Test(arguments: 0..<4)
    func specs(_ seed: UInt64) {
        Self.mutations(of: Self.validSpec, seed: 2000 + seed) { text throws(JobObjectError) in
            for problem in try PayloadSpec.decode(yaml: text).problems() {
                #expect(problem.message.count < 600, "seed \(seed): \(problem.message.prefix(200))")
            }
        }
    }

    @Test(arguments: 0..<4)
    func profiles(_ seed: UInt64) {
        Self.mutations(of: Self.validProfile, seed: 3000 + seed) { text throws(JobObjectError) in
            _ = try SeccompProfile.decode(json: text)
        }
    }

    /// Runs `decode` on 150 mutations of `base`: each is taken, or refused
    /// with a message (one line per problem, so long for many problems).
    static func mutations(of base: String, seed: UInt64, decode: (String) throws(JobObjectError) -> Void) {
        var random = SeededGenerator(seed: seed)
        for _ in 0..<150 {
            let text = mutate(base, &random)
            do {
                try decode(text)
            } catch {
                #expect(!error.message.isEmpty && error.message.count < 4000, "seed \(seed): \(error.message.prefix(200))")
            }
        }
    }

    /// `text` with one to four edits: a character deleted, a piece inserted,
    /// a span duplicated.
    static func mutate(_ text: String, _ random: inout SeededGenerator) -> String {
        var characters = Array(text)
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let at = Int.random(in: 0...characters.count, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0 where at < characters.count: characters.remove(at: at)
            case 1:
                let end = min(characters.count, at + Int.random(in: 1...20, using: &random))
                characters.insert(contentsOf: characters[at..<end], at: at)
            default: characters.insert(contentsOf: Array(pieces.randomElement(using: &random)!), at: at)
            }
        }
        return String(characters)
    }
}
