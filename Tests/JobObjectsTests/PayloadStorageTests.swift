import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import SystemPackage
import Testing

@Suite("payload storage: sandbox, volumes, unmount on init exit", .enabled(if: PayloadTier.isRoot, "mounts need root"))
struct PayloadStorageTests {
    @Test func privateSandboxShowsFilesAndExpandsVariables() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let name = uniqueJobName()
        let spec = try payloadSpec(
            """
            name: \(name)
            payload: payload
            command: ["$(CONTAINER_SANDBOX_MOUNT_POINT)/bin/hello"]
            args: ["$CONTAINER_SANDBOX_MOUNT_POINT/x", "${CONTAINER_SANDBOX_MOUNT_POINT}", "$$(CONTAINER_SANDBOX_MOUNT_POINT)"]
            workingDir: $(CONTAINER_SANDBOX_MOUNT_POINT)/data
            """, in: fixture)
        let sandbox = "/run/jobobjects/\(name)/sandbox"
        let (outcome, output, payload) = try await runPayload(spec, stdin: "go\n") { payload in
            // Private mode: the sandbox exists only in the job's namespace.
            #expect(mountPoints(under: "/run/jobobjects/\(name)").isEmpty)
            #expect(payload.mountNamespace != nil)
            #expect(payload.mountNamespace != (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")))
        }
        #expect(outcome.initStatus == .exited(code: 0))
        #expect(
            output == """
                args: \(sandbox)/x \(sandbox) $(CONTAINER_SANDBOX_MOUNT_POINT)
                sandbox: \(sandbox)
                pwd: \(sandbox)/data
                payload data

                """)
        expectPayloadLeftNothing(outcome, payload)
    }
}

extension PayloadStorageTests {
    @Test func readOnlySandboxRefusesWritesAndReadWriteVolumeKeepsThem() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let name = uniqueJobName()
        let config = fixture.write("config.txt", "setting=1\n")
        let spec = try payloadSpec(
            """
            name: \(name)
            payload: payload
            command: [sh, -c]
            args:
              - |
                touch "$CONTAINER_SANDBOX_MOUNT_POINT/new" 2>/dev/null && echo sandbox-writable || echo sandbox-read-only
                echo "written by the payload" > "$CONTAINER_SANDBOX_MOUNT_POINT/data/out.txt" && echo volume-written
                cat /run/jobobjects/\(name)/config/config.txt
                echo changed >> /run/jobobjects/\(name)/config/config.txt 2>/dev/null && echo config-writable || echo config-read-only
            volumeMounts:
              - name: data
                hostPath: \(fixture.volume)
                mountPath: $(CONTAINER_SANDBOX_MOUNT_POINT)/data
              - name: config
                hostPath: \(config)
                mountPath: /run/jobobjects/\(name)/config/config.txt
                readOnly: true
            """, in: fixture)
        let (outcome, output, payload) = try await runPayload(spec)
        #expect(outcome.initStatus == .exited(code: 0))
        #expect(output == "sandbox-read-only\nvolume-written\nsetting=1\nconfig-read-only\n")
        // The write landed in the host path and outlives the job.
        #expect(try String(contentsOfFile: fixture.volume + "/out.txt", encoding: .utf8) == "written by the payload\n")
        #expect(try String(contentsOfFile: config, encoding: .utf8) == "setting=1\n")
        #expect(access(fixture.payload + "/new", F_OK) != 0)
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func writableSandboxWhenAsked() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: payload
            command: [sh, -c, 'echo made > "$CONTAINER_SANDBOX_MOUNT_POINT/made.txt"']
            sandbox: {readOnly: false}
            """, in: fixture)
        let (outcome, _, payload) = try await runPayload(spec)
        #expect(outcome.initStatus == .exited(code: 0))
        #expect(try String(contentsOfFile: fixture.payload + "/made.txt", encoding: .utf8) == "made\n")
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func hostModeMountsAreVisibleOnTheHostUntilInitExits() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let name = uniqueJobName()
        let root = "/run/jobobjects/\(name)"
        let spec = try payloadSpec(
            """
            name: \(name)
            payload: payload
            command: [sh, -c, 'echo ready; read line; echo "$line" > /run/jobobjects/\(name)/volume/from-payload.txt']
            volumeMounts:
              - {name: volume, hostPath: \(fixture.volume), mountPath: /run/jobobjects/\(name)/volume}
            sandbox: {mode: host}
            """, in: fixture)
        var options = Payload.RunOptions()
        options.standardOutput = .pipe
        options.standardInput = .pipe
        let payload = try await Payload.start(spec, options: options)
        _ = await PipeReader.readUntil("ready", from: payload.initProcess.standardOutput!)
        // Host tools reach the payload's files through the host-visible mounts.
        #expect(Set(mountPoints(under: root)) == [root + "/sandbox", root + "/volume"])
        #expect(try String(contentsOfFile: root + "/sandbox/data.txt", encoding: .utf8) == "payload data\n")
        #expect(payload.mountNamespace == nil)
        try payload.initProcess.standardInput!.writeAll("hello from the host\n".utf8)
        try payload.initProcess.standardInput!.close()
        let outcome = await payload.wait()
        try payload.initProcess.standardOutput!.close()
        #expect(outcome.initStatus == .exited(code: 0))
        #expect(outcome.cleanup.filter { $0.action == .unmount }.map(\.target) == [root + "/volume", root + "/sandbox"])
        #expect(try String(contentsOfFile: fixture.volume + "/from-payload.txt", encoding: .utf8) == "hello from the host\n")
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test(arguments: [PayloadSpec.StorageMode.privateNamespace, .hostVisible])
    func sigkilledInitEndsTheJobAndReleasesItsMounts(_ mode: PayloadSpec.StorageMode) async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let name = uniqueJobName()
        // Init leaves two processes: one that exits on SIGTERM and one that
        // ignores it, so the end needs both the signal and the kill.
        let spec = try payloadSpec(
            """
            name: \(name)
            payload: payload
            command: [sh, -c]
            args:
              - |
                sleep 1000 &
                sh -c 'trap "" TERM; echo ignoring; exec sleep 1000' &
                wait
            volumeMounts:
              - {name: volume, hostPath: \(fixture.volume), mountPath: $(CONTAINER_SANDBOX_MOUNT_POINT)/data}
            sandbox: {mode: \(mode.rawValue)}
            """, in: fixture)
        var options = Payload.RunOptions()
        options.standardOutput = .pipe
        options.grace = .milliseconds(100)
        let payload = try await Payload.start(spec, options: options)
        let lines = await PipeReader.readUntil("ignoring", from: payload.initProcess.standardOutput!)
        #expect(lines.isEmpty)
        let members = try payload.job.processIDs().map(watch)
        #expect(members.count >= 3)
        if mode == .hostVisible { #expect(mountPoints(under: "/run/jobobjects/\(name)").count == 2) }
        try payload.initProcess.signal(.kill)
        let outcome = await payload.wait()
        try payload.initProcess.standardOutput!.close()
        #expect(outcome.initStatus == .signaled(signal: SIGKILL, coreDumped: false))
        let end = try #require(outcome.cleanup.first)
        #expect(end.action == .endProcesses)
        #expect(end.detail?.contains("killed after the grace period") == true, "\(end)")
        for member in members { #expect(isGone(member)) }
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func terminatingThePayloadRunsTheSameEnd() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: payload
            command: [sleep, "1000"]
            sandbox: {mode: host}
            """, in: fixture)
        let payload = try await Payload.start(spec)
        let outcome = await payload.terminate()
        #expect(outcome.initStatus == .signaled(signal: SIGKILL, coreDumped: false))
        expectPayloadLeftNothing(outcome, payload)
    }

    @Test func aFailedStartUndoesEverything() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let name = uniqueJobName()
        // Valid as a spec; the executable is looked up only at spawn time,
        // after the uid, the storage, the job and the mounts exist.
        let range = uniqueUIDRange()
        let spec = try payloadSpec(
            """
            name: \(name)
            payload: payload
            command: ["$(CONTAINER_SANDBOX_MOUNT_POINT)/bin/missing"]
            securityContext: {ephemeralUser: {group: nogroup, uidRange: \(range)}}
            volumeMounts:
              - {name: volume, hostPath: \(fixture.volume), mountPath: /run/jobobjects/\(name)/volume}
            sandbox: {mode: host}
            """, in: fixture)
        let parent = try JobParent.resolve()
        let error = await #expect(throws: JobObjectError.self) { try await Payload.start(spec) }
        #expect(error?.code == .executableNotFound)
        let bounds = range.dropFirst().dropLast().split(separator: "-").compactMap { UInt32($0) }
        let locks = (try? FileManager.default.contentsOfDirectory(atPath: "/run/jobobjects/.uids")) ?? []
        #expect(!locks.compactMap { UInt32($0) }.contains { (bounds[0]...bounds[1]).contains($0) })
        expectPayloadStorageGone(name: name, jobPath: parent.path.string + "/" + name, uid: nil)
    }

    @Test func storageWhoseOwnerAndJanitorDiedIsReclaimed() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let name = uniqueJobName()
        let root = "/run/jobobjects/" + name
        try FileManager.default.createDirectory(atPath: root + "/sandbox", withIntermediateDirectories: true)
        // A process that has exited and been reaped stands for the dead owner.
        let gone = try await withJobObject(name: uniqueJobName()) { job in
            let process = try job.spawn("true")
            _ = await process.wait()
            return process.pid
        }
        guard
            case .success = Syscall.mount(
                SpawnOptions.BindMount(source: FilePath(fixture.payload), target: FilePath(root + "/sandbox"), readOnly: true))
        else {
            Issue.record("cannot bind-mount as root")
            return
        }
        #expect(mountPoints(under: root) == [root + "/sandbox"])
        // The record goes last: its owner is dead from the start, so another
        // test's Payload.start may reclaim it at once, and must find the mount.
        var record = PayloadRecord(owner: ProcessIdentity(pid: gone, startTime: 1), mode: .hostVisible)
        record.mounts = [root + "/sandbox"]
        record.created = [.init(path: root, isDirectory: true), .init(path: root + "/sandbox", isDirectory: true)]
        #expect(FileManager.default.createFile(atPath: root + "/.payload", contents: Data(record.serialized.utf8)))
        // A record whose owner is alive is left alone.
        let liveName = uniqueJobName()
        let liveRoot = "/run/jobobjects/" + liveName
        try FileManager.default.createDirectory(atPath: liveRoot, withIntermediateDirectories: true)
        let live = PayloadRecord(owner: .current, mode: .privateNamespace)
        #expect(FileManager.default.createFile(atPath: liveRoot + "/.payload", contents: Data(live.serialized.utf8)))

        let reclaimed = Payload.reclaimStale()
        // Another test's Payload.start reclaims stale storage too, and may have
        // taken this record first; then it is gone all the same.
        #expect(await eventually { reclaimed.contains(name) || access(root, F_OK) != 0 })
        #expect(!reclaimed.contains(liveName))
        #expect(access(liveRoot, F_OK) == 0)
        try FileManager.default.removeItem(atPath: liveRoot)
        PayloadStateDirectory.removeIfEmpty()
        expectPayloadStorageGone(name: name, jobPath: "/nonexistent", uid: nil)
    }
}

@Suite(
    "payload resources become the job's limits",
    .enabled(if: PayloadTier.isRoot && Tier.has("memory", "pids", "cpu"), "needs root and the memory, pids and cpu controllers (VM tier)"))
struct PayloadResourcesTests {
    @Test func resourcesAreWrittenAndHitByThePayload() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        // The payload tries to start more processes than pids.max allows.
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: payload
            command: [sh, -c]
            args:
              - |
                cat /proc/self/cgroup
                exec /usr/bin/python3 -c '
                import os, signal
                kids = []
                try:
                    for i in range(8):
                        pid = os.fork()
                        if pid == 0:
                            signal.pause()
                        kids.append(pid)
                except OSError as e:
                    print("fork errno", e.errno)
                print("started", len(kids))
                for kid in kids:
                    os.kill(kid, signal.SIGKILL)
                    os.waitpid(kid, 0)
                '
            resources:
              limits: {memory: 64Mi, cpu: 500m, pids: 4}
              requests: {cpu: 250m}
            """, in: fixture)
        let (outcome, output, payload) = try await runPayload(spec) { payload in
            let limits = payload.job.limits
            #expect(limits.memoryMax == 64 << 20)
            #expect(limits.maxProcesses == 4)
            #expect(limits.cpu == .cpus(0.5))
            #expect(limits.cpuWeight == CPUWeight(10))
        }
        // Init sees its job as its cgroup namespace's root.
        #expect(output.contains("0::/\n"), "\(output)")
        // Python itself is one of the four: at most three children, then EAGAIN.
        #expect(output.contains("fork errno \(EAGAIN)\nstarted 3\n"), "\(output)")
        expectPayloadLeftNothing(outcome, payload)
    }
}

extension PayloadStorageTests {
    /// With `followEvents` the stream is subscribed before init starts, so
    /// even a payload that exits at once (and whose job is then closed)
    /// yields init's start and exit and the job's end.
    @Test func followEventsSeesAShortLivedPayloadWhole() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let spec = try payloadSpec(
            """
            name: \(uniqueJobName())
            payload: payload
            command: [sh, -c, 'exit 6']
            """, in: fixture)
        var options = Payload.RunOptions()
        options.followEvents = true
        let payload = try await Payload.start(spec, options: options)
        let outcome = await payload.wait()
        var seen: [JobEvent] = []
        for await event in try #require(payload.events) { seen.append(event) }
        #expect(outcome.initStatus == .exited(code: 6))
        #expect(seen.contains(.processStarted(pid: payload.initProcess.pid)), "\(seen)")
        #expect(seen.contains(.abnormalExit(ProcessExit(pid: payload.initProcess.pid, status: .exited(code: 6)))), "\(seen)")
        // A machine busy forking elsewhere can make the kernel drop process
        // events at any time, which the stream says, last or not.
        #expect(seen.last { $0 != .descendantEventsLost } == .activeProcessZero, "\(seen)")
        expectPayloadLeftNothing(outcome, payload)
    }
}
