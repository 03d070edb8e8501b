import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import Testing

/// The owner of a payload is SIGKILLed: the watchdog kills the job and the
/// janitor releases the storage and the uid. The owner is either the built
/// jobsup (`run -f`) or this test binary run again with only
/// `payloadOwnerHelper` selected, inside a job of the test's own so that
/// nothing it leaves can escape the check.
@Suite("payload owner killed", .enabled(if: PayloadTier.isRoot, "mounts need root"))
struct PayloadOwnerDeathTests {
    static let specVariable = "JOBOBJECTS_PAYLOAD_OWNER_SPEC"
    static let parentVariable = "JOBOBJECTS_PAYLOAD_OWNER_PARENT"
    static let readyMarker = "payload-owner-ready"

    /// Does nothing in a normal run. As the owner child of the tests below:
    /// starts the payload from the spec, says so, and waits for it.
    @Test func payloadOwnerHelper() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment[Self.specVariable] else { return }
        let spec = try PayloadSpec.load(path: path)
        var options = Payload.RunOptions(cgroupParent: environment[Self.parentVariable])
        options.standardInput = .null
        options.standardOutput = .null
        let payload = try await Payload.start(spec, options: options)
        FileHandle.standardOutput.write(Data("\(Self.readyMarker)\n".utf8))
        _ = await payload.wait()
    }

    enum Owner: String, CaseIterable, Sendable {
        /// This test binary, running `payloadOwnerHelper`.
        case testHelper
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
            let specPath = fixture.write("spec.yaml", """
                name: \(name)
                payload: payload
                command: [sh, -c, 'sleep 1000 & echo up > \(root)/volume/up; wait']
                securityContext: {ephemeralUser: {group: nogroup, uidRange: \(range)}}
                volumeMounts:
                  - {name: volume, hostPath: \(fixture.volume), mountPath: \(root)/volume}
                sandbox: {mode: \(mode.rawValue)}
                """)
            try makeFIFO(fixture.volume + "/up")
            let parent = outer.path + "/jobs"
            let owner: ProcessHandle
            switch ownerKind {
            case .testHelper:
                let testBinary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
                owner = try spawnPiped(outer, [testBinary, "--testing-library", "swift-testing", "--filter", "payloadOwnerHelper"]) {
                    $0.environment = .inheritUpdating([Self.specVariable: specPath, Self.parentVariable: parent])
                }
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
            let job = try JobObject.open(name: name, parent: parent)
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
