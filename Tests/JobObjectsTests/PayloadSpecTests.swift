import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import SystemPackage
import Testing

@Suite("payload specs: decoding and validation")
struct PayloadSpecTests {
    static let yaml = """
        name: node-admin
        payload: ./node-admin
        command: ["$(CONTAINER_SANDBOX_MOUNT_POINT)/bin/setup"]
        args: [--port, 80]
        env:
          - {name: LOG_LEVEL, value: debug}
          - name: EMPTY
        workingDir: $(CONTAINER_SANDBOX_MOUNT_POINT)
        resources:
          limits: {memory: 256Mi, cpu: 500m, pids: 64}
          requests: {memory: 64Mi, cpu: "0.25"}
        securityContext:
          ephemeralUser: {group: adm, uidRange: "70000-70099"}
          capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
          allowPrivilegeEscalation: false
          seccompProfile: {type: Localhost, localhostProfile: profiles/deny.json}
        volumeMounts:
          - name: logs
            hostPath: /var/log/node-admin
            mountPath: /var/log/node-admin
            readOnly: false
        sandbox: {mode: private, mountPoint: /run/jobobjects/node-admin/hpc, readOnly: true}
        terminationGracePeriodSeconds: 10
        hostNetwork: true
        hostPID: true
        """

    static let json = """
        {
          "name": "node-admin", "payload": "./node-admin",
          "command": ["$(CONTAINER_SANDBOX_MOUNT_POINT)/bin/setup"], "args": ["--port", "80"],
          "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "EMPTY"}],
          "workingDir": "$(CONTAINER_SANDBOX_MOUNT_POINT)",
          "resources": {"limits": {"memory": "256Mi", "cpu": "500m", "pids": 64}, "requests": {"memory": "64Mi", "cpu": "0.25"}},
          "securityContext": {
        \t"ephemeralUser": {"group": "adm", "uidRange": "70000-70099"},
        \t"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        \t"noNewPrivileges": true,
        \t"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/deny.json"}
          },
          "volumeMounts": [{"name": "logs", "hostPath": "/var/log/node-admin", "mountPath": "/var/log/node-admin", "readOnly": false}],
          "sandbox": {"mode": "private", "mountPoint": "/run/jobobjects/node-admin/hpc", "readOnly": true},
          "terminationGracePeriodSeconds": 10
        }
        """

    @Test func yamlAndJsonDecodeToTheSameSpec() throws {
        let fromYAML = try PayloadSpec.decode(yaml: Self.yaml, file: "spec.yaml", baseDirectory: "/srv")
        let fromJSON = try PayloadSpec.decode(yaml: Self.json, file: "spec.json", baseDirectory: "/srv")
        #expect(fromYAML == fromJSON)
        #expect(fromYAML.args == ["--port", "80"])
        #expect(fromYAML.env == [.init(name: "LOG_LEVEL", value: "debug"), .init(name: "EMPTY", value: "")])
        #expect(fromYAML.securityContext.ephemeralUser == .init(group: .name("adm"), uidRange: 70000...70099))
        #expect(fromYAML.securityContext.noNewPrivileges)
        #expect(fromYAML.securityContext.seccompProfile == .localhost("profiles/deny.json"))
        #expect(fromYAML.sandbox == .init(mountPoint: "/run/jobobjects/node-admin/hpc", mode: .privateNamespace, readOnly: true))
        #expect(fromYAML.terminationGracePeriodSeconds == 10)
        let limits = try fromYAML.limits()
        #expect(limits.memoryMax == 256 << 20)
        #expect(limits.memoryMin == 64 << 20)
        #expect(limits.cpu == .cpus(0.5))
        #expect(limits.cpuWeight == CPUWeight(10))
        #expect(limits.maxProcesses == 64)
    }

    @Test func loadResolvesRelativePathsAgainstTheFile() throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let path = fixture.write("spec.yaml", "name: a\npayload: payload\ncommand: [true]\n")
        let spec = try PayloadSpec.load(path: FilePath(path))
        #expect(spec.baseDirectory == fixture.directory)
        #expect(PayloadPaths.resolve(spec.payload, against: spec.baseDirectory) == fixture.payload)
        let missing = #expect(throws: JobObjectError.self) { try PayloadSpec.load(path: FilePath(fixture.directory + "/nope.yaml")) }
        #expect(missing?.message.contains("cannot read the payload spec") == true)
    }

    @Test func unknownKeysAreRejectedWithTheirLine() throws {
        let error = #expect(throws: JobObjectError.self) {
            try PayloadSpec.decode(
                yaml: """
                    name: web
                    payload: /srv/web
                    command: [nginx]
                    securityContext:
                      capabilites: {add: [NET_BIND_SERVICE]}
                    volumeMount: []
                    """, file: "web.yaml")
        }
        let message = error?.message ?? ""
        #expect(error?.code == .invalidArgument)
        #expect(
            message.contains("web.yaml:5: securityContext.capabilites: unknown key \"capabilites\" (did you mean \"capabilities\"?)"),
            "\(message)")
        #expect(message.contains("web.yaml:6: volumeMount: unknown key \"volumeMount\" (did you mean \"volumeMounts\"?)"), "\(message)")
    }

    @Test func everyProblemIsReportedWithItsField() throws {
        let error = #expect(throws: JobObjectError.self) {
            try PayloadSpec.decode(
                yaml: """
                    name: bad/name
                    command: []
                    args: [ok, {not: scalar}]
                    resources:
                      limits: {memory: lots, cpu: fast, pids: 0}
                    securityContext:
                      runAsUser: nobody
                      ephemeralUser: {group: adm, uidRange: "9-3"}
                      capabilities: {add: [NET_BIND_SERVICE, TELEPATHY]}
                      noNewPrivileges: "yes please"
                      seccompProfile: {type: RuntimeDefault}
                    volumeMounts:
                      - {name: a, hostPath: relative/path, mountPath: data}
                      - {name: a, mountPath: /x}
                    sandbox: {mode: shared}
                    hostNetwork: false
                    terminationGracePeriodSeconds: soon
                    """, file: "bad.yaml")
        }
        let message = error?.message ?? ""
        for expected in [
            "bad.yaml:1: payload: is required",
            "bad.yaml:3: args[1]: expected a string, found a mapping",
            "bad.yaml:8: securityContext.ephemeralUser.uidRange: expected a range of uids",
            "bad.yaml:10: securityContext.noNewPrivileges: expected true or false, found the string \"yes please\"",
            "bad.yaml:11: securityContext.seccompProfile.type: unknown type \"RuntimeDefault\"",
            "bad.yaml:14: volumeMounts[1].hostPath: is required",
            "bad.yaml:15: sandbox.mode: unknown mode \"shared\"",
            "bad.yaml:16: hostNetwork: a payload always shares the host's network",
            "bad.yaml:17: terminationGracePeriodSeconds: expected a whole number",
        ] {
            #expect(message.contains(expected), "missing \(expected) in:\n\(message)")
        }
    }

    @Test func semanticProblemsAreReportedTogether() throws {
        let error = #expect(throws: JobObjectError.self) {
            try PayloadSpec.decode(
                yaml: """
                    name: .hidden
                    payload: p
                    command: [""]
                    env: [{name: CONTAINER_SANDBOX_MOUNT_POINT, value: x}]
                    resources:
                      limits: {memory: lots, cpu: fast}
                    securityContext:
                      runAsUser: nobody
                      ephemeralUser: {group: adm}
                      capabilities: {add: [NET_BIND_SERVICE, TELEPATHY]}
                    volumeMounts:
                      - {name: a, hostPath: relative/path, mountPath: data}
                      - {name: a, hostPath: /srv, mountPath: /elsewhere}
                    sandbox: {mode: host}
                    """, file: "bad.yaml")
        }
        let message = error?.message ?? ""
        for expected in [
            "bad.yaml:1: name: must not start with \".\"",
            "bad.yaml:3: command[0]: the executable is empty",
            "bad.yaml:4: env[0].name: CONTAINER_SANDBOX_MOUNT_POINT is set by the runner",
            "bad.yaml:6: resources.limits.memory: \"lots\" is not a size",
            "bad.yaml:9: securityContext.ephemeralUser: cannot be combined with runAsUser",
            "bad.yaml:10: securityContext.capabilities.add[1]: unknown capability \"TELEPATHY\"",
            "bad.yaml:12: volumeMounts[0].hostPath: must be an absolute path",
            "bad.yaml:12: volumeMounts[0].mountPath: must be absolute",
            "bad.yaml:13: volumeMounts[1].name: another volume mount is also called \"a\"",
            "bad.yaml:13: volumeMounts[1].mountPath: in host mode every mount lies under /run/jobobjects/.hidden/",
        ] {
            #expect(message.contains(expected), "missing \(expected) in:\n\(message)")
        }
    }

    @Test func problemsThatNeedTheSystemNameTheirField() throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: no-such-dir
            command: [true]
            securityContext:
              runAsUser: no-such-user-xyz
              supplementalGroups: [no-such-group-xyz]
            volumeMounts:
              - {name: gone, hostPath: /nonexistent/volume, mountPath: /run/jobobjects/x/v}
              - {name: point, hostPath: \(fixture.volume), mountPath: /nonexistent/mount/point}
            """, in: fixture)
        let problems = spec.problems()
        let byField = Dictionary(grouping: problems, by: \.field)
        #expect(byField["payload"]?.first?.message.contains("does not exist") == true)
        #expect(byField["payload"]?.first?.line == 2)
        #expect(byField["securityContext.runAsUser"]?.first?.message.contains("no user named \"no-such-user-xyz\"") == true)
        #expect(byField["securityContext.supplementalGroups[0]"]?.first?.line == 6)
        #expect(byField["volumeMounts[0].hostPath"]?.first?.message.contains("does not exist on the host") == true)
        #expect(byField["volumeMounts[1].mountPath"]?.first?.message.contains("must exist as a directory") == true)
        #expect(throws: JobObjectError.self) { try spec.validate() }
    }

    @Test func numericUserWithoutPasswdEntryNeedsAGroup() throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let spec = try payloadSpec("name: a\npayload: payload\ncommand: [true]\nsecurityContext: {runAsUser: 4243}\n", in: fixture)
        #expect(spec.problems().map(\.field) == ["securityContext.runAsGroup"])
    }

    @Test func capabilitiesTheOwnerDoesNotHoldCannotBeGiven() throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let missing = Capability.all.subtracting(Capability.permitted()).first
        let name = missing?.name ?? "CAP_CHOWN"
        let spec = try payloadSpec(
            "name: a\npayload: payload\ncommand: [true]\nsecurityContext: {capabilities: {add: [\(name)]}}\n", in: fixture)
        let problems = spec.problems()
        if missing != nil {
            #expect(problems.first?.field == "securityContext.capabilities.add[0]")
            #expect(problems.first?.message.contains("does not hold") == true)
        } else {
            #expect(problems.isEmpty)
        }
    }

    @Test func sandboxVariableExpansion() {
        let s = "/run/jobobjects/a/sandbox"
        #expect(PayloadPaths.expand("$(CONTAINER_SANDBOX_MOUNT_POINT)/bin", sandbox: s) == s + "/bin")
        #expect(PayloadPaths.expand("${CONTAINER_SANDBOX_MOUNT_POINT}:$CONTAINER_SANDBOX_MOUNT_POINT", sandbox: s) == s + ":" + s)
        #expect(PayloadPaths.expand("$CONTAINER_SANDBOX_MOUNT_POINTS", sandbox: s) == "$CONTAINER_SANDBOX_MOUNT_POINTS")
        #expect(PayloadPaths.expand("$$(CONTAINER_SANDBOX_MOUNT_POINT) $HOME", sandbox: s) == "$(CONTAINER_SANDBOX_MOUNT_POINT) $HOME")
    }

    @Test func recordsSurviveARoundTrip() {
        var record = PayloadRecord(owner: ProcessIdentity(pid: 42, startTime: 7), mode: .hostVisible)
        record.janitor = ProcessIdentity(pid: 43, startTime: 8)
        record.cgroup = "/sys/fs/cgroup/jobs/a b"
        record.cgroupID = 12345
        record.mounts = ["/run/jobobjects/a/with\ttab", "/run/jobobjects/a/100%"]
        record.created = [.init(path: "/run/jobobjects/a", isDirectory: true), .init(path: "/run/jobobjects/a/f\nx", isDirectory: false)]
        record.uidLock = "/run/jobobjects/.uids/70000"
        #expect(PayloadRecord(parsing: record.serialized) == record)
        #expect(PayloadRecord(parsing: "owner\tx\t1\n") == nil)
    }
}
