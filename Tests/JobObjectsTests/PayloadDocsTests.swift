import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import Testing

/// Runs the worked example of docs/hostprocess.md as written there, with
/// the volume in a scratch directory instead of /var/log/node-admin.
@Suite("docs/hostprocess.md example", .enabled(if: PayloadTier.isRoot, "payloads need root"))
struct PayloadDocsTests {
    static var document: String {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            return try String(contentsOf: root.appendingPathComponent("docs/hostprocess.md"), encoding: .utf8)
        }
    }

    /// The text between `start` and the next `end` after it.
    static func section(of text: String, after start: String, until end: String) throws -> String {
        let from = try #require(text.range(of: start))
        let to = try #require(text.range(of: end, range: from.upperBound..<text.endIndex))
        return String(text[from.upperBound..<to.lowerBound])
    }

    @Test(arguments: [true, false])
    func nodeAdminExampleRunsAndLeavesNothing(hostMode: Bool) async throws {
        let doc = try Self.document
        let script = try Self.section(of: doc, after: "cat > node-admin/bin/collect <<'EOF'\n", until: "\nEOF\n")
        var yaml = try Self.section(of: doc, after: "<!-- example: node-admin.yaml -->\n```yaml\n", until: "```")
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let fm = FileManager.default
        try fm.createDirectory(atPath: fixture.directory + "/node-admin/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: fixture.directory + "/node-admin/logs", withIntermediateDirectories: true)
        #expect(
            fm.createFile(
                atPath: fixture.directory + "/node-admin/bin/collect", contents: Data((script + "\n").utf8),
                attributes: [.posixPermissions: 0o755]))
        // install -d -m 0775 -g adm
        let logs = fixture.directory + "/logs"
        try fm.createDirectory(atPath: logs, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o775])
        #expect(chown(logs, 0, 4) == 0)
        let name = uniqueJobName()
        yaml = yaml.replacingOccurrences(of: "name: node-admin", with: "name: \(name)")
            .replacingOccurrences(of: "/var/log/node-admin", with: logs)
            .replacingOccurrences(of: "ephemeralUser: {group: adm}", with: "ephemeralUser: {group: adm, uidRange: \(uniqueUIDRange())}")
        if !hostMode { yaml = yaml.replacingOccurrences(of: "sandbox:\n  mode: host\n", with: "") }
        let spec = try PayloadSpec.decode(yaml: yaml, file: "node-admin.yaml", baseDirectory: fixture.directory)
        #expect(spec.sandbox.mode == (hostMode ? .hostVisible : .privateNamespace))

        let (outcome, output, payload) = try await Port80.shared.exclusive { try await runPayload(spec) }
        #expect(outcome.initStatus == .exited(code: 0), "\(output)")
        #expect(output == "wrote \(payload.sandboxMountPoint)/logs/report.txt\nbound 127.0.0.1:80\n")
        let report = try String(contentsOfFile: logs + "/report.txt", encoding: .utf8)
        #expect(report.contains("user: uid=\(outcome.ephemeralUID ?? 0) gid=4(adm) groups=4(adm)\n"), "\(report)")
        #expect(report.contains("CapPrm:\t0000000000000400\nCapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n"), "\(report)")
        let root = "/run/jobobjects/\(name)"
        let actions = outcome.cleanup.map { "\($0.action.rawValue) \($0.target)" }
        let storage =
            hostMode
            ? ["unmount \(root)/sandbox/logs", "unmount \(root)/sandbox"]
            : ["release mount namespace \(payload.mountNamespace ?? "private namespace")"]
        #expect(
            actions == ["end processes job \(name)"] + storage + [
                "remove \(root)/.payload", "remove \(root)/sandbox", "remove \(root)",
                "remove cgroup \(outcome.jobPath)", "release user uid \(outcome.ephemeralUID ?? 0)",
            ] + [actions.last ?? ""])
        #expect(actions.last?.hasPrefix("stop janitor process ") == true)
        expectPayloadLeftNothing(outcome, payload)
    }
}
