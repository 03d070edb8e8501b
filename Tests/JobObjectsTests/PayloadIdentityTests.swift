import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import Testing

@Suite("payload identity: users, groups, ephemeral users, capabilities", .enabled(if: PayloadTier.isRoot, "switching users needs root"))
struct PayloadIdentityTests {
    static let statusScript = "grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"

    func run(_ security: String, fixture: PayloadFixture, script: String = statusScript) async throws -> (PayloadOutcome, String, Payload) {
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: payload
            command: [sh, -c, \(yamlQuoted(script))]
            securityContext: \(security)
            """, in: fixture)
        return try await runPayload(spec)
    }

    @Test func namedUserWithGroupAndSupplementaryGroups() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let (outcome, output, payload) = try await run(
            "{runAsUser: nobody, runAsGroup: nogroup, supplementalGroups: [adm, 4242]}", fixture: fixture)
        let status = statusFields(output)
        #expect(status["Uid"] == "65534\t65534\t65534\t65534")
        #expect(status["Gid"] == "65534\t65534\t65534\t65534")
        #expect(status["Groups"] == "4 4242")
        // A non-root user without capabilities asked for has none.
        #expect(status["CapEff"] == "0000000000000000")
        #expect(outcome.credentials == SpawnOptions.Credentials(uid: 65534, gid: 65534, supplementaryGroups: [4, 4242]))
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func numbersWithoutPasswdEntries() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let (outcome, output, payload) = try await run("{runAsUser: 4243, runAsGroup: 4244}", fixture: fixture)
        let status = statusFields(output)
        #expect(status["Uid"] == "4243\t4243\t4243\t4243")
        #expect(status["Gid"] == "4244\t4244\t4244\t4244")
        #expect(status["Groups"] == "")
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func ephemeralUsersOfConcurrentJobsNeverShareAUid() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let range = uniqueUIDBlock()
        func spec() throws -> PayloadSpec {
            try payloadSpec(
                """
                name: \(uniqueJobName())
                payload: payload
                command: [sh, -c, 'id -u; id -g; echo ready; read line; exit 0']
                securityContext: {ephemeralUser: {group: nogroup, uidRange: "\(range.lowerBound)-\(range.upperBound)"}}
                """, in: fixture)
        }
        var options = Payload.RunOptions()
        options.standardOutput = .pipe
        options.standardInput = .pipe
        // Both allocations race; the locks keep them apart.
        async let first = Payload.start(try spec(), options: options)
        async let second = Payload.start(try spec(), options: options)
        let payloads = try await [first, second]
        var uids: [uid_t] = []
        for payload in payloads {
            let lines = await PipeReader.readUntil("ready", from: payload.initProcess.standardOutput!)
            let uid = try #require(uid_t(lines.first ?? ""))
            #expect(uid == payload.ephemeralUID)
            #expect(lines.dropFirst().first == "65534")
            #expect(range.contains(uid))
            #expect(getpwuid(uid) == nil)
            #expect(access("/run/jobobjects/.uids/\(uid)", F_OK) == 0)
            uids.append(uid)
        }
        #expect(uids[0] != uids[1])
        for payload in payloads {
            try payload.initProcess.standardInput!.close()
            let outcome = await payload.wait()
            try payload.initProcess.standardOutput!.close()
            #expect(outcome.initStatus == .exited(code: 0))
            #expect(outcome.cleanup.contains { $0.action == .releaseUser })
            expectPayloadLeftNothing(outcome, payload)
        }
    }

    static let bindScript = """
        \(statusScript)
        /usr/bin/python3 -c '
        import socket
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 80))
            print("bound 80")
        except OSError as e:
            print("bind errno", e.errno)
        '
        """

    @Test func nonRootPayloadWithNetBindServiceBindsPort80() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let (outcome, output, payload) = try await Port80.shared.exclusive {
            try await run(
                "{ephemeralUser: {group: nogroup, uidRange: \(uniqueUIDRange())}, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}, noNewPrivileges: true}",
                fixture: fixture, script: Self.bindScript)
        }
        let status = statusFields(output)
        let only = "0000000000000400"  // bit 10: CAP_NET_BIND_SERVICE
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] { #expect(status[set] == only, "\(set): \(status[set] ?? "-")") }
        #expect(status["NoNewPrivs"] == "1")
        #expect(status["Uid"]?.hasPrefix("\(payload.ephemeralUID ?? 0)\t") == true)
        #expect(output.contains("bound 80\n"), "\(output)")
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func nonRootPayloadWithoutItCannot() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let (outcome, output, payload) = try await run(
            "{ephemeralUser: {group: nogroup, uidRange: \(uniqueUIDRange())}, capabilities: {drop: [ALL]}}", fixture: fixture,
            script: Self.bindScript)
        let status = statusFields(output)
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] { #expect(status[set] == "0000000000000000", "\(set)") }
        #expect(output.contains("bind errno \(EACCES)\n"), "\(output)")
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func rootPayloadKeepsExactlyTheListedCapabilities() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let (outcome, output, payload) = try await run("{runAsUser: 0, capabilities: {drop: [ALL], add: [CHOWN, KILL]}}", fixture: fixture)
        let status = statusFields(output)
        let kept = "0000000000000021"  // CAP_CHOWN (0) and CAP_KILL (5)
        for set in ["CapPrm", "CapEff", "CapBnd"] { #expect(status[set] == kept, "\(set): \(status[set] ?? "-")") }
        #expect(status["Uid"] == "0\t0\t0\t0")
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func capabilityNamesGoThroughLibcap() throws {
        #expect(try Capability(name: "NET_BIND_SERVICE") == .netBindService)
        #expect(try Capability(name: "cap_sys_admin") == .sysAdmin)
        #expect(try Capability(name: "CAP_CHOWN").rawValue == 0)
        #expect(Capability.netBindService.name == "CAP_NET_BIND_SERVICE")
        #expect(throws: JobObjectError.self) { try Capability(name: "NET_BIND_SERVIC") }
        #expect(throws: JobObjectError.self) { try Capability(name: "10") }
    }
}
