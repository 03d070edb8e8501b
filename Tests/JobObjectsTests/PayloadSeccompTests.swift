import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import Testing

@Suite("payload seccomp profiles")
struct PayloadSeccompTests {
    static let denyMkdir = """
        {
        \t"defaultAction": "SCMP_ACT_ALLOW",
        \t"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        \t"syscalls": [
        \t\t{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95, "comment": "EOPNOTSUPP"}
        \t]
        }
        """

    static let mkdirScript = """
        grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
        /usr/bin/python3 -c '
        import os, sys
        try:
            os.mkdir(sys.argv[1])
            print("mkdir ok")
        except OSError as e:
            print("mkdir errno", e.errno)
        ' "$1"
        """

    func runMkdir(profile: String?, fixture: PayloadFixture, target: String) async throws -> (PayloadOutcome, String, Payload) {
        let security =
            profile.map { "{runAsUser: nobody, seccompProfile: {type: Localhost, localhostProfile: \($0)}}" } ?? "{runAsUser: nobody}"
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: payload
            command: [sh, -c, \(yamlQuoted(Self.mkdirScript)), sh, \(target)]
            securityContext: \(security)
            """, in: fixture)
        return try await runPayload(spec)
    }

    @Test(.enabled(if: PayloadTier.isRoot, "switching users needs root"))
    func profileDenyingMkdirFailsItWithTheConfiguredErrno() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        _ = fixture.write("deny-mkdir.json", Self.denyMkdir)
        let target = fixture.volume + "/made-by-payload"
        let (outcome, output, payload) = try await runMkdir(profile: "deny-mkdir.json", fixture: fixture, target: target)
        let status = statusFields(output)
        #expect(status["Seccomp"] == "2")
        // A non-root process may load a filter only under no_new_privs.
        #expect(status["NoNewPrivs"] == "1")
        #expect(payload.noNewPrivileges)
        #expect(output.contains("mkdir errno 95\n"), "\(output)")
        #expect(access(target, F_OK) != 0)
        expectPayloadLeftNothing(outcome, payload)

        // The same payload without the profile makes the directory.
        let (plainOutcome, plainOutput, plain) = try await runMkdir(profile: nil, fixture: fixture, target: target)
        #expect(plainOutput.contains("mkdir ok\n"), "\(plainOutput)")
        #expect(statusFields(plainOutput)["Seccomp"] == "0")
        #expect(access(target, F_OK) == 0)
        expectPayloadLeftNothing(plainOutcome, plain)
    }

    @Test func profileCompilesToBPF() throws {
        let profile = try SeccompProfile.decode(json: Self.denyMkdir, file: "deny-mkdir.json")
        #expect(profile.defaultAction == .allow)
        #expect(profile.syscalls.first?.action == .errno(95))
        let filter = try profile.compile(capabilities: [])
        #expect(filter.instructionCount > 4)
        #expect(filter.program.count == filter.instructionCount * 8)
    }

    @Test func dockerConditionsAndArchMapAreHonoured() throws {
        let profile = try SeccompProfile.decode(
            json: """
                {
                  "defaultAction": "SCMP_ACT_ERRNO",
                  "defaultErrnoRet": 1,
                  "archMap": [
                    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
                  ],
                  "syscalls": [
                    {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}},
                    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                    {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                     "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]},
                    {"names": ["socketcall"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.3"}}
                  ]
                }
                """)
        let reboot = try #require(profile.syscalls.first { $0.names == ["reboot"] })
        #expect(!profile.applies(reboot, capabilities: []))
        #expect(profile.applies(reboot, capabilities: [Capability(rawValue: 22)]))
        let clone = try #require(profile.syscalls.first { $0.names == ["clone"] })
        #expect(!profile.applies(clone, capabilities: [.sysAdmin]))
        // Two conditions on one argument become two rules; both compile.
        _ = try profile.compile(capabilities: [])
        _ = try profile.compile(capabilities: Capability.all)
    }

    @Test func malformedProfileNamesEveryBadEntryWithItsLine() throws {
        let error = #expect(throws: JobObjectError.self) {
            try SeccompProfile.decode(
                json: """
                    {
                      "defaultAction": "SCMP_ACT_ALLOW",
                      "syscalls": [
                        {"names": ["mkdir", "mkdri"], "action": "SCMP_ACT_ERRNO"},
                        {"names": ["rmdir"], "action": "SCMP_ACT_EXPLODE", "errnoRett": 1},
                        {"names": ["chmod"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]}
                      ],
                      "architectures": ["SCMP_ARCH_Z80"]
                    }
                    """, file: "bad.json")
        }
        let message = error?.message ?? ""
        #expect(error?.code == .invalidArgument)
        #expect(message.contains("has 6 problems"), "\(message)")
        #expect(message.contains("bad.json:4: syscalls[0].names[1]: unknown system call \"mkdri\""), "\(message)")
        #expect(message.contains("bad.json:5: syscalls[1].action: unknown action \"SCMP_ACT_EXPLODE\""), "\(message)")
        #expect(message.contains("bad.json:5: syscalls[1].errnoRett: unknown key \"errnoRett\" (did you mean \"errnoRet\"?)"), "\(message)")
        #expect(message.contains("bad.json:6: syscalls[2].args[0].index: must be 0…5"), "\(message)")
        #expect(message.contains("bad.json:6: syscalls[2].args[0].op: unknown operator \"SCMP_CMP_ROUGHLY\""), "\(message)")
        #expect(message.contains("bad.json:8: architectures[0]: unknown architecture \"SCMP_ARCH_Z80\""), "\(message)")
    }

    @Test func aPayloadWithABadProfileIsRejectedAndNothingIsCreated() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        _ = fixture.write(
            "bad.json",
            """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "not_a_syscall"], "action": "SCMP_ACT_ERRNO"}]}
            """)
        let name = uniqueJobName()
        let spec = try payloadSpec(
            """
            name: \(name)
            payload: payload
            command: [true]
            securityContext:
              seccompProfile: {type: Localhost, localhostProfile: bad.json}
            """, in: fixture)
        let error = await #expect(throws: JobObjectError.self) { try await Payload.start(spec) }
        let message = error?.message ?? ""
        #expect(
            message.contains(
                "spec.yaml:5: securityContext.seccompProfile.localhostProfile: the profile \(fixture.directory)/bad.json has a problem"),
            "\(message)")
        #expect(message.contains("bad.json:2: syscalls[0].names[1]: unknown system call \"not_a_syscall\""), "\(message)")
        let parent = try JobParent.resolve()
        expectPayloadStorageGone(name: name, jobPath: parent.path.string + "/" + name, uid: nil)
    }
}
