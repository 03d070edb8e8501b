import Foundation
import Glibc
@testable import JobObjects
import Testing

@Suite("child subreaper")
struct SubreaperTests {
    @Test func reapsOrphansWithoutStealingHandledStatuses() async throws {
        let reaper = try ChildSubreaper.enable()
        let orphans = reaper.orphanExits
        #expect(jobshimIsSubreaper())
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // The shell exits at once; its child is orphaned, re-parented to
            // this process, and exits with 7 once released.
            let payload = try spawnPiped(job, ["sh", "-c", "sh -c 'echo $$; read x < /dev/stdin; exit 7' & exit 3"]) {
                $0.standardInput = .pipe
            }
            let orphan = try #require(await PipeReader.readUntil("never", from: payload.standardOutput!).first.flatMap { pid_t($0) })
            #expect(await payload.wait() == .exited(code: 3))
            try payload.standardInput!.close()
            try payload.standardOutput!.close()
            var seen: ProcessExit?
            for await exit in orphans where exit.pid == orphan {
                seen = exit
                break
            }
            #expect(seen?.status == .exited(code: 7))
        }
    }

    private func jobshimIsSubreaper() -> Bool {
        (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)).map { _ in true } ?? false
    }
}
