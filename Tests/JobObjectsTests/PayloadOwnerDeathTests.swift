import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import SystemPackage
import Testing

/// The owner of a payload is SIGKILLed: the watchdog kills the job and the
/// janitor releases the storage and the uid. The owner is either the built
/// jobsup (`run -f`) or the `run-payload` example (the library alone),
/// inside a job of the test's own so that nothing it leaves can escape the
/// check.
@Suite("payload owner killed", .enabled(if: PayloadTier.isRoot, "mounts need root"))
struct PayloadOwnerDeathTests {
    enum Owner: String, CaseIterable, Sendable {
        /// Examples/RunPayload: `run-payload SPEC PARENT`.
        case library
        /// The built `jobsup`, running `jobsup run -f SPEC`.
        case jobsup
    }

    @Test(arguments: [PayloadSpec.StorageMode.privateNamespace, .hostVisible], Owner.allCases)
    func sigkilledOwnerLeavesNoMountUidOrCgroup(_ mode: PayloadSpec.StorageMode, _ ownerKind: Owner) async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        try await withJobObject(name: uniqueJobName()) { outer async throws in
            let name = uniqueJobName()
            let root = "/run/jobobjects/\(name)"
            let range = uniqueUIDRange()
            let specPath = fixture.write(
                "spec.yaml",
                """
                name: \(name)
                payload: payload
                command: [sh, -c, 'sleep 1000 & echo up > \(root)/volume/up; wait']
                securityContext: {ephemeralUser: {group: nogroup, uidRange: \(range)}}
                volumeMounts:
                  - {name: volume, hostPath: \(fixture.volume), mountPath: \(root)/volume}
                sandbox: {mode: \(mode.rawValue)}
                """)
            try makeFIFO(fixture.volume + "/up")
            let parent = outer.path.string + "/jobs"
            let owner: ProcessHandle
            switch ownerKind {
            case .library:
                let runPayload = try #require(builtExecutable("run-payload"), "run-payload is built with the tests")
                owner = try spawnPiped(outer, [runPayload, specPath, parent]) { $0.standardInput = .null }
            case .jobsup:
                owner = try spawnPiped(outer, [jobsupPath, "run", "-f", specPath, "--cgroup-parent", parent]) {
                    $0.standardInput = .null
                }
            }
            // The payload has forked its second process once it wrote this.
            #expect(await readFIFO(fixture.volume + "/up") == "up\n")
            let bounds = range.dropFirst().dropLast().split(separator: "-").compactMap { UInt32($0) }
            let locks = (try? FileManager.default.contentsOfDirectory(atPath: "/run/jobobjects/.uids")) ?? []
            let uid = try #require(locks.compactMap { UInt32($0) }.first { (bounds[0]...bounds[1]).contains($0) })
            let jobPath = parent + "/" + name
            let job = try JobObject.open(name: name, parent: FilePath(parent))
            let members = try job.processIDs().map(watch)
            #expect(members.count >= 2)
            #expect(liveProcessUIDs().contains(uid))
            #expect(access(root + "/.payload", F_OK) == 0)
            if mode == .hostVisible {
                #expect(Set(mountPoints(under: root)) == [root + "/sandbox", root + "/volume"])
            } else {
                #expect(mountPoints(under: root).isEmpty)
            }

            try owner.signal(.kill)
            #expect(await owner.wait() == .signaled(signal: SIGKILL, coreDumped: false))
            // The watchdog and the janitor run in the owner's cgroup (ours)
            // and exit once their work is done: empty means done.
            try await outer.waitUntilEmpty()
            try owner.standardOutput!.close()
            for member in members { #expect(isGone(member)) }
            expectPayloadStorageGone(name: name, jobPath: jobPath, uid: uid)
        }
    }
}
