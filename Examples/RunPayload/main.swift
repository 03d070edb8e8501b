// run-payload: runs a HostProcess-style payload spec with the
// JobObjectsPayload library, the way `jobsup run -f` does without the rest
// of jobsup, and prints how it ended and how it was cleaned up.
//
//   swift run run-payload SPEC.yaml [CGROUP-PARENT]
//
// It prints "started NAME" once the payload's init runs. If this program is
// killed, even by SIGKILL, the payload's job is killed and its storage and
// ephemeral user released by the library's watchdog and janitor.
import Glibc
import JobObjects
import JobObjectsPayload
import SystemPackage

let arguments = CommandLine.arguments.dropFirst()
guard (1...2).contains(arguments.count) else {
    print("usage: run-payload SPEC [CGROUP-PARENT]")
    exit(2)
}
do {
    let spec = try PayloadSpec.load(path: FilePath(arguments.first!))
    var options = Payload.RunOptions(cgroupParent: arguments.dropFirst().first.map { FilePath($0) })
    options.standardInput = .null
    let payload = try await Payload.start(spec, options: options)
    // Straight to the descriptor: print's buffer would hold it back in a pipe.
    let line = Array("started \(spec.name)\n".utf8)
    _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    let outcome = await payload.wait()
    print(outcome)
    exit(outcome.initStatus.shellStatus)
} catch {
    print("run-payload: \(error)")
    exit(125)
}
