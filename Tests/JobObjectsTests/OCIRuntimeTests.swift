import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import SystemPackage
import Testing

/// jobsup-runc, the OCI runtime face, driven command by command as the
/// containerd shim and podman drive runc.
@Suite("OCI runtime: jobsup-runc")
struct OCIRuntimeTests {
    /// create holds init in its job before execve; start lets it run as a
    /// host process with the payload directory at the sandbox mount point;
    /// delete ends what is left (a setsid daemon) and removes everything.
    @Test func aContainerIsAHostProcessHeldInItsJobUntilStarted() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle(
                "c1",
                script: """
                    echo "sandbox=$CONTAINER_SANDBOX_MOUNT_POINT uid=$(id -u) cgroup=$(tail -n 1 /proc/self/cgroup)"
                    cat "$CONTAINER_SANDBOX_MOUNT_POINT/marker"
                    setsid sleep 1000 < /dev/null > /dev/null 2>&1 &
                    echo done
                    """, uid: 65534)
            let created = try await runtime.create("c1", bundle: bundle)
            #expect(created.code == 0, "\(created.output)")
            let pid = try #require(pid_t(String(contentsOfFile: bundle + "/pid", encoding: .utf8)))
            #expect(try await runtime.status("c1") == "created")
            let jobPath = runtime.cgroupLevelPath + "/c1"
            // Init's own pid, in the job, and not yet the payload's program.
            let members = try String(contentsOfFile: jobPath + "/cgroup.procs", encoding: .utf8)
            #expect(members.split(separator: "\n") == [Substring(String(pid))])
            let image = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
            #expect(image == URL(fileURLWithPath: jobsupPath).resolvingSymlinksInPath().path)
            #expect(!(try String(contentsOfFile: bundle + "/output", encoding: .utf8)).contains("sandbox="))

            let started = try await runtime.run(["start", "c1"])
            #expect(started.code == 0, "\(started.err)")
            #expect(await eventually { (try? String(contentsOfFile: bundle + "/output", encoding: .utf8))?.contains("done") == true })
            #expect(try await runtime.reaches("c1", "stopped"))
            let output = try String(contentsOfFile: bundle + "/output", encoding: .utf8)
            let sandbox = runtime.root + "/c1/sandbox"
            #expect(output.contains("sandbox=\(sandbox) uid=65534 cgroup=0::/"), "\(output)")
            #expect(output.contains("payload file"), "\(output)")
            // The daemon outlived init, in the job.
            let daemons = try String(contentsOfFile: jobPath + "/cgroup.procs", encoding: .utf8).split(separator: "\n")
            #expect(daemons.count == 1)
            let daemon = try watch(try #require(pid_t(String(daemons[0]))))

            let deleted = try await runtime.run(["delete", "c1"])
            #expect(deleted.code == 0, "\(deleted.err)")
            #expect(await eventually { isGone(daemon) })
            #expect(access(sandbox, F_OK) != 0)
            runtime.expectNothingLeft()
            // The shim deletes twice; the second says what podman and the
            // shim look for.
            let again = try await runtime.run(["delete", "c1"])
            #expect(again.code == 1)
            #expect(again.err.contains("container c1 does not exist"), "\(again.err)")
        }
    }

    /// exec adds a process to a running container: in its job and in
    /// init's mount namespace (it sees the sandbox), as the process file's
    /// user; without --detach its status is the runtime's.
    @Test func execAddsAProcessInsideTheRunningContainer() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle("ex", script: "exec sleep 1000")
            #expect(try await runtime.create("ex", bundle: bundle).code == 0)
            let early = try await runtime.run(["exec", "ex", "true"])
            #expect(early.code == 1 && early.err.contains("it is created, not running"), "\(early.err)")
            #expect(try await runtime.run(["start", "ex"]).code == 0)
            let initPid = try #require(pid_t(String(contentsOfFile: bundle + "/pid", encoding: .utf8)))

            let attached = try await runtime.run(
                ["exec", "ex", "sh", "-c", "cat \"$CONTAINER_SANDBOX_MOUNT_POINT/marker\"; id -u; exit 4"])
            #expect(attached.code == 4, "\(attached.err)")
            #expect(attached.out == "payload file\n0\n", "\(attached.out)")

            let processFile = bundle + "/process.json"
            try """
            {"args": ["sh", "-c", "exec sleep 1000 </dev/null >/dev/null 2>&1"], "cwd": "/",
             "user": {"uid": 65534, "gid": 65534}, "env": ["PATH=/usr/bin:/bin"]}
            """.write(toFile: processFile, atomically: true, encoding: .utf8)
            let detached = try await runtime.run(["exec", "--process", processFile, "--detach", "--pid-file", bundle + "/exec-pid", "ex"])
            #expect(detached.code == 0, "\(detached.err)")
            let pid = try #require(pid_t(String(contentsOfFile: bundle + "/exec-pid", encoding: .utf8)))
            let added = try watch(pid)
            let members = try String(contentsOfFile: runtime.cgroupLevelPath + "/ex/cgroup.procs", encoding: .utf8)
            #expect(members.split(separator: "\n").contains(Substring(String(pid))))
            let namespace = { (pid: pid_t) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/mnt") }
            #expect(namespace(pid) != nil && namespace(pid) == namespace(initPid))
            #expect(namespace(pid) != namespace(getpid()))
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("Uid:\t65534\t65534\t65534\t65534"), "\(status)")

            try #"{"args": [], "cwd": "relative"}"#.write(toFile: processFile, atomically: true, encoding: .utf8)
            let bad = try await runtime.run(["exec", "--process", processFile, "ex"])
            #expect(bad.code == 1 && bad.err.contains("process.args") && bad.err.contains("process.cwd"), "\(bad.err)")
            let neither = try await runtime.run(["exec", "ex"])
            #expect(neither.code == 1 && neither.err.contains("exec needs --process FILE"), "\(neither.err)")

            #expect(try await runtime.run(["kill", "ex", "KILL"]).code == 0)
            #expect(try await runtime.reaches("ex", "stopped"))
            let late = try await runtime.run(["exec", "ex", "true"])
            #expect(late.code == 1 && late.err.contains("it is stopped, not running"), "\(late.err)")
            #expect(try await runtime.run(["delete", "--force", "ex"]).code == 0)
            #expect(await eventually { isGone(added) })
            runtime.expectNothingLeft()
        }
    }

    /// update names what is wrong with its resources, and changes nothing.
    @Test func updateSaysWhatIsWrongWithItsResources() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle("up", script: "exec sleep 1000")
            #expect(try await runtime.create("up", bundle: bundle).code == 0)
            #expect(try await runtime.run(["start", "up"]).code == 0)
            let file = bundle + "/resources.json"
            let cases: [(String?, String)] = [
                (nil, "update needs --resources FILE"),
                ("{\"memory\": ", "not valid YAML or JSON"),
                (#"{"memory": {"limit": "lots"}}"#, "resources.memory.limit"),
                (#"{"pids": {"limit": -5}}"#, "must be -1 (no limit) or above"),
                (#"{"memory": {"limit": 1048576, "swap": 1024}}"#, "is memory plus swap"),
            ]
            for (text, message) in cases {
                if let text { try text.write(toFile: file, atomically: true, encoding: .utf8) }
                let result = try await runtime.run(text == nil ? ["update", "up"] : ["update", "--resources", file, "up"])
                #expect(result.code == 1 && result.err.contains(message), "\(text ?? "no flag"): \(result.err)")
            }
            let missing = try await runtime.run(["update", "--resources", bundle + "/absent.json", "up"])
            #expect(missing.code == 1 && missing.err.contains("absent.json"), "\(missing.err)")
            // `-`: the same object on standard input, read with the same checks.
            try Data([UInt8]("{\"pids\": {\"limit\": 1}, \"x\": \"".utf8) + [0xFF, 0x22, 0x7D]).write(to: URL(fileURLWithPath: file))
            let notText = try await runtime.run(["update", "--resources", "-", "up"], input: file)
            #expect(notText.code == 1 && notText.err.contains("standard input is not UTF-8 text"), "\(notText.err)")
            try Data(count: OCIConfig.maximumFileSize + 1).write(to: URL(fileURLWithPath: file))
            let huge = try await runtime.run(["update", "--resources", "-", "up"], input: file)
            #expect(huge.code == 1 && huge.err.contains("larger than \(OCIConfig.maximumFileSize) bytes"), "\(huge.err)")
            try #"{"pids": {"limit": -5}}"#.write(toFile: file, atomically: true, encoding: .utf8)
            let negative = try await runtime.run(["update", "--resources", "-", "up"], input: file)
            #expect(
                negative.code == 1 && negative.err.contains("standard input") && negative.err.contains("-1 (no limit) or above"),
                "\(negative.err)")
            #expect(try await runtime.run(["kill", "up", "KILL"]).code == 0)
            #expect(try await runtime.reaches("up", "stopped"))
            try #"{"pids": {"limit": 10}}"#.write(toFile: file, atomically: true, encoding: .utf8)
            let stopped = try await runtime.run(["update", "--resources", file, "up"])
            #expect(stopped.code == 1 && stopped.err.contains("it is stopped"), "\(stopped.err)")
            #expect(try await runtime.run(["delete", "up"]).code == 0)
            runtime.expectNothingLeft()
        }
    }

    /// process.terminal with --console-socket: init's standard descriptors
    /// and controlling terminal are a pty whose controller end reaches the
    /// socket, sized as consoleSize says; exec --tty gets one the same way.
    @Test func aTerminalGoesToTheConsoleSocket() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let listener = try ConsoleSocketListener(path: runtime.directory + "/console.sock")
            defer { listener.close() }
            let bundle = try runtime.bundle(
                "tty", script: "tty; ps -o tty= -p $$; stty size; echo done; exec sleep 1000",
                process: #", "terminal": true, "consoleSize": {"height": 40, "width": 100}"#)
            // Its output read to the end, as the containerd shim reads create's
            // when there is a terminal: init, held at its gate, must not keep
            // create's pipes open.
            let created = try await runtime.run(["create", "--bundle", bundle, "--console-socket", listener.path, "tty"])
            #expect(created.code == 0, "\(created.err)")
            let controller = try listener.receiveTerminal()
            defer { try? controller.close() }
            #expect(try await runtime.run(["start", "tty"]).code == 0)
            // exec --tty: a terminal of its own, and the runtime exits with its status.
            let exec = try await runtime.run(["exec", "--tty", "--console-socket", listener.path, "tty", "sh", "-c", "tty; exit 3"])
            #expect(exec.code == 3, "\(exec.err)")
            let execController = try listener.receiveTerminal()
            let execOutput = ConsoleSocketListener.readAll(execController)
            try execController.close()
            #expect(execOutput.contains("/dev/pts/"), "\(execOutput)")
            let noTTY = try await runtime.run(["exec", "--console-socket", listener.path, "tty", "true"])
            #expect(
                noTTY.code == 1 && noTTY.err.contains("exec (whose --tty sets it) has process.terminal false"),
                "\(noTTY.code) \(noTTY.out) \(noTTY.err)")
            let execNoSocket = try await runtime.run(["exec", "--tty", "tty", "true"])
            #expect(execNoSocket.code == 1 && execNoSocket.err.contains("needs --console-socket"), "\(execNoSocket.err)")
            #expect(try await runtime.run(["kill", "tty", "KILL"]).code == 0)
            let output = ConsoleSocketListener.readAll(controller)
            let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(lines.count == 4 && lines[0].hasPrefix("/dev/pts/"), "\(output)")
            #expect(lines.count == 4 && "/dev/" + lines[1] == lines[0], "the controlling terminal: \(output)")
            #expect(lines.dropFirst(2) == ["40 100", "done"], "\(output)")
            #expect(try await runtime.reaches("tty", "stopped"))
            #expect(try await runtime.run(["delete", "tty"]).code == 0)

            // Both or neither, as runc: each refusal leaves nothing.
            let noSocket = try runtime.bundle("nosocket", script: "true", process: #", "terminal": true"#)
            let refused = try await runtime.create("nosocket", bundle: noSocket)
            #expect(refused.code == 1 && refused.output.contains("needs --console-socket"), "\(refused.output)")
            let plain = try runtime.bundle("plain", script: "true")
            let unasked = try await runtime.create("plain", bundle: plain, extra: ["--console-socket", listener.path])
            #expect(unasked.code == 1 && unasked.output.contains("process.terminal false"), "\(unasked.output)")
            let absent = try await runtime.create(
                "nosocket", bundle: noSocket, extra: ["--console-socket", runtime.directory + "/absent.sock"])
            #expect(absent.code == 1 && absent.output.contains("cannot connect to the console socket"), "\(absent.output)")
            runtime.expectNothingLeft()
        }
    }

    /// A pod's sandbox container does not run its image's entrypoint on the
    /// host: init is jobsup-runc holding the sandbox, which SIGTERM ends.
    @Test func aPodSandboxIsHeldByTheRuntimeItself() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            for (id, marker) in [("pod1", "io.kubernetes.cri.container-type"), ("pod2", "io.kubernetes.cri-o.ContainerType")] {
                let bundle = try runtime.bundle(id, script: "echo entrypoint-ran", annotations: ", \"\(marker)\": \"sandbox\"")
                #expect(try await runtime.create(id, bundle: bundle).code == 0)
                #expect(try await runtime.run(["start", id]).code == 0)
                let pid = try #require(pid_t(String(contentsOfFile: bundle + "/pid", encoding: .utf8)))
                #expect(await eventually { Self.commandLine(pid) == ["jobsup-runc", "hold-sandbox"] }, "\(Self.commandLine(pid))")
                // SIGCHLD only makes it reap.
                _ = kill(pid, SIGCHLD)
                #expect(try await runtime.status(id) == "running")
                #expect(try await runtime.run(["kill", id, "TERM"]).code == 0)
                #expect(try await runtime.reaches(id, "stopped"))
                #expect(!(try String(contentsOfFile: bundle + "/output", encoding: .utf8)).contains("entrypoint-ran"))
                #expect(try await runtime.run(["delete", id]).code == 0)
            }
            runtime.expectNothingLeft()
        }
    }

    private static func commandLine(_ pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// kill signals init; kill --all every member, SIGKILL through the job.
    @Test func killReachesInitOrTheWholeJob() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let single = try runtime.bundle("single", script: "exec sleep 1000")
            #expect(try await runtime.create("single", bundle: single).code == 0)
            #expect(try await runtime.run(["start", "single"]).code == 0)
            #expect(try await runtime.status("single") == "running")
            #expect(try await runtime.run(["kill", "single", "TERM"]).code == 0)
            #expect(try await runtime.reaches("single", "stopped"))
            let notRunning = try await runtime.run(["kill", "single", "TERM"])
            #expect(notRunning.code == 1 && notRunning.err.contains("not running"), "\(notRunning.err)")
            #expect(try await runtime.run(["delete", "single"]).code == 0)

            let group = try runtime.bundle("group", script: "sleep 1000 & sleep 1000 & wait")
            #expect(try await runtime.create("group", bundle: group).code == 0)
            #expect(try await runtime.run(["start", "group"]).code == 0)
            let procs = runtime.cgroupLevelPath + "/group/cgroup.procs"
            #expect(await eventually { ((try? String(contentsOfFile: procs, encoding: .utf8)) ?? "").split(separator: "\n").count == 3 })
            let pids = try String(contentsOfFile: procs, encoding: .utf8).split(separator: "\n").compactMap { pid_t(String($0)) }
            let running = try await runtime.run(["ps", "--format", "json", "group"])
            #expect(running.out.trimmingCharacters(in: .whitespacesAndNewlines) == "[\(pids.map(String.init).joined(separator: ","))]")
            let refused = try await runtime.run(["delete", "group"])
            #expect(refused.code == 1 && refused.err.contains("not stopped"), "\(refused.err)")
            #expect(try await runtime.run(["kill", "--all", "group", "KILL"]).code == 0)
            #expect(((try? String(contentsOfFile: procs, encoding: .utf8)) ?? "x").isEmpty)
            #expect(try await runtime.run(["delete", "group"]).code == 0)
            runtime.expectNothingLeft()
        }
    }

    /// The shim's `kill --all ID 9` after init exited ends a payload as
    /// HostProcess does: SIGTERM to what is left first, and its grace.
    @Test func killAllAfterInitExitedGivesTheRestTheirGrace() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle(
                "grace",
                script: """
                    setsid sh -c 'trap "echo termed > $OUT/termed; exit 0" TERM; echo ready > $OUT/ready; while :; do sleep 0.1; done' \
                      < /dev/null > /dev/null 2>&1 &
                    while [ ! -e "$OUT/ready" ]; do sleep 0.1; done
                    """, annotations: #", "jobobjects.io/grace": "120""#)
            #expect(try await runtime.create("grace", bundle: bundle).code == 0)
            #expect(try await runtime.run(["start", "grace"]).code == 0)
            #expect(try await runtime.reaches("grace", "stopped"))
            #expect(try await runtime.run(["kill", "--all", "grace", "9"]).code == 0)
            #expect((try? String(contentsOfFile: bundle + "/termed", encoding: .utf8)) == "termed\n")
            #expect(try await runtime.run(["delete", "grace"]).code == 0)
            runtime.expectNothingLeft()
        }
    }

    /// Each config a host process cannot run is refused with its field
    /// named, in the JSON log the shim reads, and leaves nothing: no state,
    /// no cgroup level, no job — also when the failure comes after the job
    /// was made (a working directory that does not exist).
    @Test(arguments: [
        ("{\"ociVersion\": ", "not valid YAML or JSON"),
        (#"{"ociVersion": "1.0.2", "process": {"args": 5}, "root": {"path": "rootfs"}}"#, "process.args: expected a list"),
        (#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}}"#, "process: is required"),
        (#"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "nowhere"}}"#, "is not a directory"),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}}"#,
            "a new pid namespace cannot be given"
        ),
        (#"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}}"#, "has no mount namespace"),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "hooks": {"prestart": [{"path": "/bin/true"}]}, "linux": {"namespaces": [{"type": "mount"}]}}"#,
            "hooks are not run"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}], "cgroupsPath": "system.slice:jobsup:x"}}"#,
            "slice:prefix:name"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}], "resources": {"unified": {"cgroup.procs": "1"}}}}"#,
            "unified \"cgroup.procs\" is not a cgroup v2 file of the controllers"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}], "resources": {"unified": {"memory.high": "1\n2"}}}}"#,
            "unified memory.high: the value must be one line"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}], "resources": {"unified": {"memory.high": [5]}}}}"#,
            "linux.resources.unified.memory.high"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"], "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}]}}"#,
            "unknown resource \"RLIMIT_BOGUS\""
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"], "terminal": true, "consoleSize": {"height": -1, "width": 80}}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}]}}"#,
            "process.consoleSize.height: must be from 0 to 65535"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"], "cwd": "/does/not/exist"}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}], "cgroupsPath": "LEVEL/late"}}"#,
            "working directory /does/not/exist does not exist"
        ),
        (
            #"{"ociVersion": "1.0.2", "process": {"args": ["true"]}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "mount"}], "cgroupsPath": "LEVEL/grace"}, "annotations": {"jobobjects.io/grace": "-1"}}"#,
            "jobobjects.io/grace must be whole seconds"
        ),
    ])
    func aConfigThatCannotRunIsRefusedAndLeavesNothing(_ config: String, _ expected: String) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle("bad", script: "true")
            try config.replacing("LEVEL", with: runtime.cgroupLevel).write(
                toFile: bundle + "/config.json", atomically: true, encoding: .utf8)
            let created = try await runtime.create("bad", bundle: bundle)
            #expect(created.code == 1)
            #expect(created.output.contains(expected), "\(created.output)")
            let log = (try? String(contentsOfFile: bundle + "/log", encoding: .utf8)) ?? ""
            #expect(log.hasPrefix("{\"level\":\"error\",\"msg\":\""), "\(log)")
            #expect(log.contains(jsonQuoted(expected).dropFirst().dropLast()), "\(log)")
            runtime.expectNothingLeft()
        }
    }

    /// Under `--systemd-cgroup`, `linux.cgroupsPath` is `slice:prefix:name`;
    /// one that systemd could not take is refused before anything is made,
    /// and so is the flag where systemd does not run (this tier's machines).
    /// The scope itself is tested in the systemd tier.
    @Test(.enabled(if: access("/run/systemd/system", F_OK) != 0))
    func systemdCgroupPathsAreCheckedBeforeAnythingIsMade() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle("sd", script: "true")
            let config = try String(contentsOfFile: bundle + "/config.json", encoding: .utf8)
            for (path, expected) in [
                ("/jobsup/x", "is not systemd's slice:prefix:name form, which --systemd-cgroup takes"),
                ("a:b:c:d", "is not systemd's slice:prefix:name form"),
                ("system.slice:jobsup:", "is not systemd's slice:prefix:name form"),
                ("bad--slice.slice:jobsup:x", "is not a systemd slice name"),
                ("system:jobsup:x", "is not a systemd slice name"),
                ("system.slice:jobsup:pod.slice", "names a slice as the container's unit"),
                ("system.slice:jobsup:a/b", "is not a valid systemd unit name"),
                ("system.slice:jobsup:" + String(repeating: "x", count: 300), "is not a valid systemd unit name"),
                ("system.slice:jobsup:x", "systemd does not manage this machine (no /run/systemd/system); use the cgroupfs driver"),
            ] {
                let edited = config.replacing(/"cgroupsPath": "[^"]*"/, with: "\"cgroupsPath\": \(jsonQuoted(path))")
                try edited.write(toFile: bundle + "/config.json", atomically: true, encoding: .utf8)
                let created = try await runtime.create("sd", bundle: bundle, globals: ["--systemd-cgroup"])
                #expect(created.code == 1 && created.output.contains(expected), "\(path): \(created.output)")
                runtime.expectNothingLeft()
            }
        }
    }

    /// Commands on a container that is not there, or not in the state they
    /// need, fail with the words engines match.
    @Test func commandsSayWhatIsWrongWithTheContainer() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            for command in [["state", "nope"], ["start", "nope"], ["kill", "nope", "KILL"], ["delete", "nope"], ["ps", "nope"]] {
                let result = try await runtime.run(command)
                #expect(result.code == 1 && result.err.contains("container nope does not exist"), "\(command): \(result.err)")
            }
            for (command, expected) in [
                (["state", "../etc"], "invalid container id"), (["kill", "x", "NOSUCH"], "unknown signal"),
                (["--systemd-cgroup", "state", "x"], "container x does not exist"), (["frobnicate"], "unknown command"),
                (["create", "--bogus", "x"], "unknown flag --bogus"), (["--log-format", "xml", "list"], "text or json"),
            ] {
                let result = try await runtime.run(command)
                #expect(result.code == 1 && result.err.contains(expected), "\(command): \(result.err)")
            }
            let bundle = try runtime.bundle("twice", script: "sleep 1000")
            #expect(try await runtime.create("twice", bundle: bundle).code == 0)
            let duplicate = try await runtime.create("twice", bundle: bundle)
            #expect(duplicate.code == 1 && duplicate.output.contains("container twice already exists"), "\(duplicate.output)")
            #expect(try await runtime.run(["start", "twice"]).code == 0)
            let second = try await runtime.run(["start", "twice"])
            #expect(second.code == 1 && second.err.contains("it is running, not created"), "\(second.err)")
            let listed = try await runtime.run(["list", "--format", "json"])
            #expect(listed.out.contains("\"id\":\"twice\",\"status\":\"running\""), "\(listed.out)")
            #expect(try await runtime.run(["delete", "--force", "twice"]).code == 0)
            runtime.expectNothingLeft()
            let version = try await runtime.run(["--version"])
            #expect(version.code == 0 && version.out.contains("spec: 1.0.2"))
            let features = try await runtime.run(["features"])
            #expect(features.out.contains("\"namespaces\":[\"mount\",\"cgroup\"]"), "\(features.out)")
        }
    }

    /// A created container that is never started is ended by delete.
    @Test func deletingACreatedContainerEndsItsWaitingInit() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle("waiting", script: "echo ran")
            #expect(try await runtime.create("waiting", bundle: bundle).code == 0)
            let pid = try #require(pid_t(String(contentsOfFile: bundle + "/pid", encoding: .utf8)))
            let initProcess = try watch(pid)
            #expect(try await runtime.run(["delete", "waiting"]).code == 0)
            #expect(await eventually { isGone(initProcess) })
            #expect(!(try String(contentsOfFile: bundle + "/output", encoding: .utf8)).contains("ran"))
            runtime.expectNothingLeft()
        }
    }

    /// linux.resources become the job's limits, and the payload meets them.
    @Test(.enabled(if: Tier.has("memory", "pids", "cpu")))
    func resourcesAreTheJobsLimits() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle(
                "limited",
                script:
                    "python3 -c 'b = bytearray(48 << 20); print(\"allocated\")'; echo started; for i in $(seq 1 30); do sleep 1000 & done; wait",
                linux:
                    #", "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 10}, "cpu": {"quota": 50000, "period": 100000}, "unified": {"memory.high": "33554432", "cpu.max.burst": "10000"}}"#
            )
            #expect(try await runtime.create("limited", bundle: bundle).code == 0)
            let path = runtime.cgroupLevelPath + "/limited"
            #expect(try String(contentsOfFile: path + "/memory.max", encoding: .utf8) == "67108864\n")
            #expect(try String(contentsOfFile: path + "/cpu.max", encoding: .utf8) == "50000 100000\n")
            #expect(try String(contentsOfFile: path + "/pids.max", encoding: .utf8) == "10\n")
            #expect(try String(contentsOfFile: path + "/memory.high", encoding: .utf8) == "33554432\n", "unified, as given")
            #expect(try String(contentsOfFile: path + "/cpu.max.burst", encoding: .utf8) == "10000\n", "unified, as given")
            // update sets new limits on the live job (init waits at its gate).
            try #"{"memory": {"limit": 134217728}, "pids": {"limit": 20}}"#.write(
                toFile: bundle + "/update.json", atomically: true, encoding: .utf8)
            let updated = try await runtime.run(["update", "--resources", bundle + "/update.json", "limited"])
            #expect(updated.code == 0, "\(updated.err)")
            #expect(try String(contentsOfFile: path + "/memory.max", encoding: .utf8) == "134217728\n")
            #expect(try String(contentsOfFile: path + "/pids.max", encoding: .utf8) == "20\n")
            // Back to 10, this time on standard input (`-`).
            try #"{"pids": {"limit": 10}}"#.write(toFile: bundle + "/update.json", atomically: true, encoding: .utf8)
            #expect(try await runtime.run(["update", "--resources", "-", "limited"], input: bundle + "/update.json").code == 0)
            #expect(try String(contentsOfFile: path + "/pids.max", encoding: .utf8) == "10\n")
            #expect(try String(contentsOfFile: path + "/memory.max", encoding: .utf8) == "134217728\n", "left as it was")
            #expect(try await runtime.run(["start", "limited"]).code == 0)
            // The kernel refuses the forks past the limit (the shell gives up at the first).
            #expect(await eventually { ((try? Self.eventCount("max", in: path + "/pids.events")) ?? 0) > 0 })
            // The payload went past the unified memory.high: the kernel
            // throttled it (memory.events "high"), it was not killed.
            #expect(try Self.eventCount("high", in: path + "/memory.events") > 0)
            #expect(try Self.eventCount("oom_kill", in: path + "/memory.events") == 0)
            #expect(try String(contentsOfFile: bundle + "/output", encoding: .utf8).hasPrefix("allocated\nstarted"))
            let current = try #require(Int(String(contentsOfFile: path + "/pids.current", encoding: .utf8).dropLast()))
            #expect(current <= 10)
            #expect(try await runtime.run(["delete", "--force", "limited"]).code == 0)
            runtime.expectNothingLeft()
        }
    }

    /// `events --stats` is runc's stats JSON for the job: its CPU time is
    /// the job's own (`cpu.stat`, read before and after), its task count
    /// the job's; a stopped container's stats are refused.
    @Test func eventsStatsAreTheJobsAccounting() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle(
                "ev", script: "i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done; echo busy; exec sleep 1000")
            #expect(try await runtime.create("ev", bundle: bundle).code == 0)
            #expect(try await runtime.run(["start", "ev"]).code == 0)
            #expect(await eventually { (try? String(contentsOfFile: bundle + "/output", encoding: .utf8)) == "busy\n" })
            let path = runtime.cgroupLevelPath + "/ev"
            let before = try Self.cpuUsageNanoseconds(path)
            let stats = try await runtime.run(["events", "--stats", "ev"])
            let after = try Self.cpuUsageNanoseconds(path)
            #expect(stats.code == 0, "\(stats.err)")
            let event = try #require(JSONSerialization.jsonObject(with: Data(stats.out.utf8)) as? [String: Any], "\(stats.out)")
            #expect(event["type"] as? String == "stats" && event["id"] as? String == "ev")
            let data = try #require(event["data"] as? [String: Any])
            let usage = try #require((data["cpu"] as? [String: Any])?["usage"] as? [String: Any])
            let total = try #require((usage["total"] as? NSNumber)?.uint64Value)
            #expect(before > 0 && before <= total && total <= after, "cpu.stat \(before)…\(after), events \(total)")
            let user = try #require((usage["user"] as? NSNumber)?.uint64Value)
            let kernel = try #require((usage["kernel"] as? NSNumber)?.uint64Value)
            #expect(user + kernel <= total && total - (user + kernel) <= 2000, "user and kernel are total's split, rounded down")
            #expect((data["pids"] as? [String: Any])?["current"] as? Int == 1, "\(stats.out)")
            let memory = try #require((data["memory"] as? [String: Any])?["usage"] as? [String: Any])
            #expect((memory["limit"] as? NSNumber)?.uint64Value == UInt64.max, "no memory limit: \(stats.out)")
            for bad in [
                ["events", "--interval", "0s", "ev"], ["events", "--interval", "5 s", "ev"], ["events", "--interval", "-1s", "ev"],
            ] {
                let refused = try await runtime.run(bad)
                #expect(refused.code == 1 && refused.err.contains("is not a duration from 1ms to 24h"), "\(bad): \(refused.err)")
            }
            #expect(try await runtime.run(["kill", "ev", "KILL"]).code == 0)
            #expect(try await runtime.reaches("ev", "stopped"))
            #expect(try await runtime.run(["delete", "ev"]).code == 0)
            let gone = try await runtime.run(["events", "--stats", "ev"])
            #expect(gone.code == 1 && gone.err.contains("container ev does not exist"), "\(gone.err)")
            runtime.expectNothingLeft()
        }
    }

    /// `events` streams: statistics every interval (the limits the config
    /// set among them), a `{"type":"oom"}` line when the kernel OOM-kills a
    /// process in the job, and it ends when the container stops.
    @Test(.enabled(if: Tier.has("memory", "pids")))
    func eventsStreamStatisticsAndOutOfMemoryKills() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle(
                "oom", script: "python3 -c 'bytearray(256 << 20)'; echo survived $?; exec sleep 1000",
                linux: #", "resources": {"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 12}}"#)
            #expect(try await runtime.create("oom", bundle: bundle).code == 0)
            let log = bundle + "/events"
            let events = try runtime.start(["events", "--interval", "100ms", "oom"], outputFile: log)
            func lines() -> [String] {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
            #expect(await eventually { lines().contains { $0.hasPrefix("{\"type\":\"stats\"") } }, "\(lines())")
            #expect(try await runtime.run(["start", "oom"]).code == 0)
            #expect(await eventually { lines().contains("{\"type\":\"oom\",\"id\":\"oom\"}") }, "\(lines())")
            #expect(
                await eventually {
                    (try? String(contentsOfFile: bundle + "/output", encoding: .utf8))?.contains("survived 137") == true
                })
            // A later line counts the kill too.
            #expect(
                await eventually {
                    lines().last { $0.hasPrefix("{\"type\":\"stats\"") }?.contains("\"oom_kill\":1") == true
                })
            let stats = try #require(lines().last { $0.hasPrefix("{\"type\":\"stats\"") })
            #expect(stats.contains("\"usage\":{\"limit\":33554432,"), "\(stats)")
            #expect(stats.contains("\"limit\":12}"), "\(stats)")
            #expect(try await runtime.run(["kill", "oom", "KILL"]).code == 0)
            let status = await events.wait()
            #expect(status == .exited(code: 0), "events ends with the container: \(lines().suffix(2))")
            for line in lines() {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
            }
            #expect(try await runtime.run(["delete", "oom"]).code == 0)
            runtime.expectNothingLeft()
        }
    }

    /// Kill-on-close bound to the owner: the process that ran create (the
    /// shim, conmon) dies, and the container is ended and removed; one whose owner
    /// lives on, or that opts out, is left alone; the watch holds no
    /// descriptor of the engine's, and is gone once the job is.
    @Test func theJobEndsWhenTheProcessThatCreatedItDies() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let runc = runtime.directory + "/jobsup-runc"
            try FileManager.default.createSymbolicLink(atPath: runc, withDestinationPath: jobsupPath)
            /// A shell that runs create, then waits, as a shim does.
            func owner(_ id: String, bundle: String) throws -> ProcessHandle {
                let create = "'\(runc)' --root '\(runtime.root)' create --bundle '\(bundle)' --pid-file '\(bundle)/pid' \(id)"
                var options = SpawnOptions(
                    "/bin/sh", arguments: ["-c", "\(create) > '\(bundle)/output' 2>&1 && echo ok > '\(bundle)/created'; exec sleep 1000"])
                options.cgroupNamespace = false
                options.environment = .inheritUpdating([JobParent.environmentVariable: nil])
                return try job.spawn(options)
            }
            func watch(_ id: String) -> [pid_t] {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
                return entries.compactMap { pid_t($0) }.filter { pid in
                    let line = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                    return line.starts(with: Data("jobsup-runc\0".utf8)) && line.range(of: Data("\0watch-owner\0\(id)\0".utf8)) != nil
                }
            }

            let killed = try runtime.bundle("killed", script: "exec sleep 1000")
            let shim = try owner("killed", bundle: killed)
            #expect(
                await eventually { access(killed + "/created", F_OK) == 0 },
                "\((try? String(contentsOfFile: killed + "/output", encoding: .utf8)) ?? "")")
            #expect(try await runtime.run(["start", "killed"]).code == 0)
            let watcher = try #require(watch("killed").first, "no watch-owner process for the container")
            #expect(watch("killed").count == 1)
            let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(watcher)/fd")
            for fd in ["0", "1", "2"] {
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(watcher)/fd/\(fd)") == "/dev/null")
            }
            #expect(
                !descriptors.contains {
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(watcher)/fd/\($0)"))?.hasPrefix(runtime.directory)
                        == true
                },
                "the watch holds none of the bundle's files")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(watcher)/cwd") == "/")
            #expect(try await runtime.status("killed") == "running")
            try shim.signal(.kill)
            _ = await shim.wait()
            // Ended and removed, as delete --force does; the engine's own
            // delete then hears "does not exist", which it takes as done.
            let initPid = try #require(pid_t(String(contentsOfFile: killed + "/pid", encoding: .utf8)))
            #expect(await eventually { kill(initPid, 0) != 0 }, "init outlived the process that created it")
            #expect(await eventually { access(runtime.cgroupLevelPath + "/killed", F_OK) != 0 }, "the job is left")
            #expect(await eventually { watch("killed").isEmpty }, "the watch is gone with the job")
            let deleted = try await runtime.run(["delete", "killed"])
            #expect(deleted.code == 1 && deleted.err.contains("container killed does not exist"), "\(deleted.err)")

            // Opted out: the container outlives its owner, as runc's do.
            let kept = try runtime.bundle("kept", script: "exec sleep 1000", annotations: #", "jobobjects.io/kill-on-close": "false""#)
            let keptShim = try owner("kept", bundle: kept)
            #expect(await eventually { access(kept + "/created", F_OK) == 0 })
            #expect(watch("kept").isEmpty)
            #expect(try await runtime.run(["start", "kept"]).code == 0)
            try keptShim.signal(.kill)
            _ = await keptShim.wait()
            #expect(try await runtime.status("kept") == "running")
            #expect(try await runtime.run(["delete", "--force", "kept"]).code == 0)

            // The owner lives on and init exits: the watch goes with the job.
            let ends = try runtime.bundle("ends", script: "sleep 0.2")
            #expect(try await runtime.create("ends", bundle: ends).code == 0)
            #expect(watch("ends").count == 1)
            #expect(try await runtime.run(["start", "ends"]).code == 0)
            #expect(try await runtime.reaches("ends", "stopped"))
            #expect(try await runtime.run(["delete", "ends"]).code == 0)
            #expect(await eventually { watch("ends").isEmpty }, "the watch outlived its container")

            let bad = try runtime.bundle("bad", script: "true", annotations: #", "jobobjects.io/kill-on-close": "maybe""#)
            let refused = try await runtime.create("bad", bundle: bad)
            #expect(
                refused.code == 1 && refused.output.contains("jobobjects.io/kill-on-close is \"true\" or \"false\""), "\(refused.output)")
            runtime.expectNothingLeft()
        }
    }

    /// `jobobjects.io/ephemeral-user-group`: init and every exec run as a
    /// uid of the container's own (no passwd entry, from the payload range)
    /// in the group named; two containers get two uids; a group that does
    /// not exist is refused before anything is made.
    @Test func anEphemeralUserRunsEveryProcessOfTheContainer() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let nogroup = try #require(getgrnam("nogroup")).pointee.gr_gid
            var uids: [String] = []
            for id in ["eph1", "eph2"] {
                let bundle = try runtime.bundle(
                    id, script: "echo \"$(id -u) $(id -g) $(id -G)\" > $OUT/ids; exec sleep 1000",
                    annotations: #", "jobobjects.io/ephemeral-user-group": "nogroup""#)
                #expect(try await runtime.create(id, bundle: bundle).code == 0)
                #expect(try await runtime.run(["start", id]).code == 0)
                // Whole once its line ends (the shell makes the file, then writes).
                #expect(
                    await eventually {
                        ((try? String(contentsOfFile: bundle + "/ids", encoding: .utf8)) ?? "").hasSuffix("\n")
                    })
                let ids = try String(contentsOfFile: bundle + "/ids", encoding: .utf8).split(separator: " ").map(String.init)
                try #require(ids.count == 3, "\(ids)")
                let uid = try #require(UInt32(ids[0]))
                #expect(PayloadSpec.EphemeralUser.defaultRange.contains(uid), "\(ids)")
                #expect(getpwuid(uid) == nil, "an ephemeral uid has no passwd entry")
                #expect(
                    ids.dropFirst().map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } == ["\(nogroup)", "\(nogroup)"], "\(ids)")
                let exec = try await runtime.run(["exec", id, "id", "-u"])
                #expect(exec.code == 0 && exec.out == ids[0] + "\n", "exec runs as the container's user: \(exec.out) \(exec.err)")
                uids.append(ids[0])
            }
            #expect(Set(uids).count == 2, "each container has its own uid: \(uids)")
            for id in ["eph1", "eph2"] { #expect(try await runtime.run(["delete", "--force", id]).code == 0) }
            for (group, expected) in [("no-such-group", "no group named \"no-such-group\""), ("4000000000", "no group has the number")] {
                let bundle = try runtime.bundle(
                    "badgroup", script: "true", annotations: #", "jobobjects.io/ephemeral-user-group": ""# + group + "\"")
                let refused = try await runtime.create("badgroup", bundle: bundle)
                #expect(refused.code == 1 && refused.output.contains(expected), "\(refused.output)")
            }
            runtime.expectNothingLeft()
        }
    }

    /// `run`: create and start in one call. In the foreground it passes
    /// signals on to init, ends what init left, deletes the container and
    /// exits with init's status; `--detach` returns once init runs.
    @Test func runCreatesStartsWaitsAndDeletes() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let runtime = try OCIRuntimeHarness(job: job)
            defer { runtime.removeDirectory() }
            let bundle = try runtime.bundle(
                "fg", script: "echo from-init; setsid sleep 1000 & echo $! > $OUT/daemon; exit 7",
                annotations: #", "jobobjects.io/grace": "1""#)
            let ran = try await runtime.run(["run", "--bundle", bundle, "fg"])
            #expect(ran.code == 7 && ran.out == "from-init\n", "\(ran)")
            let daemon = try #require(pid_t(String(contentsOfFile: bundle + "/daemon", encoding: .utf8).dropLast()))
            // Killed: gone, or a zombie waiting for its new parent to reap
            // it. The kernel takes an exiting process out of its cgroup just
            // before it becomes a zombie, so the job can be empty (and run
            // done) a moment before the daemon's pidfd says it exited.
            let left = try? ProcessHandle(observing: daemon)
            #expect(await eventually { left.map(isGone) ?? true }, "what init left is ended")
            #expect(try await runtime.run(["state", "fg"]).err.contains("container fg does not exist"))

            // Signals sent to run reach init.
            let trapped = try runtime.bundle(
                "sig", script: "trap 'echo got-term > $OUT/term; exit 3' TERM; echo ready > $OUT/ready; while :; do sleep 0.1; done")
            let foreground = try runtime.start(["run", "--bundle", trapped, "sig"], outputFile: trapped + "/run-output")
            #expect(await eventually { access(trapped + "/ready", F_OK) == 0 })
            try foreground.signal(.terminate)
            let status = await foreground.wait()
            #expect(status == .exited(code: 3), "\(status)")
            #expect(try String(contentsOfFile: trapped + "/term", encoding: .utf8) == "got-term\n")

            // Its stdio is the container's (as create's): a file, not a pipe read to its end.
            let detached = try runtime.bundle("bg", script: "exec sleep 1000")
            let started = try runtime.start(["run", "-d", "--bundle", detached, "bg"], outputFile: detached + "/run-output")
            #expect(
                await started.wait() == .exited(code: 0),
                "\((try? String(contentsOfFile: detached + "/run-output", encoding: .utf8)) ?? "")")
            #expect(try await runtime.status("bg") == "running")
            #expect(try await runtime.run(["delete", "--force", "bg"]).code == 0)
            runtime.expectNothingLeft()
        }
    }

    private static func cpuUsageNanoseconds(_ path: String) throws -> UInt64 {
        let stat = try String(contentsOfFile: path + "/cpu.stat", encoding: .utf8)
        let line = try #require(stat.split(separator: "\n").first { $0.hasPrefix("usage_usec ") })
        return try #require(UInt64(line.dropFirst(11))) * 1000
    }

    /// The count `key` in a cgroup events file (`pids.events`, `memory.events`).
    private static func eventCount(_ key: String, in file: String) throws -> Int {
        let events = try String(contentsOfFile: file, encoding: .utf8)
        let line = events.split(separator: "\n").first { $0.hasPrefix(key + " ") }
        return line.flatMap { Int($0.dropFirst(key.count + 1)) } ?? 0
    }
}
