// run-in-job: runs a command in a job object of its own and reports how it
// ended and what it used. An example of the JobObjects library alone (it
// links neither libcap, libseccomp nor libyaml).
//
//   swift run run-in-job -- make -j4
//   swift run run-in-job --collect -- uname -r
//   swift run run-in-job --pids-max 100 -- make -j4
//
// Whatever the command leaves running is killed when it exits, and killed
// too if this program is (even by SIGKILL).
import Glibc
import JobObjects

let usage = "usage: run-in-job [--collect] [--pids-max N] -- COMMAND [ARGUMENT...]"
var arguments = Array(CommandLine.arguments.dropFirst())
let collect = arguments.first == "--collect"
if collect { arguments.removeFirst() }
var limits = JobLimits()
if arguments.first == "--pids-max" {
    guard arguments.count >= 2, let n = Int(arguments[1]), n > 0 else {
        print(usage)
        exit(2)
    }
    limits.maxProcesses = n
    arguments.removeFirst(2)
}
guard arguments.first == "--", arguments.count >= 2 else {
    print(usage)
    exit(2)
}
let command = SpawnOptions(arguments[1], arguments: Array(arguments.dropFirst(2)))

do {
    let job = try JobObject.create(limits: limits)
    let status: ExitStatus
    if collect {
        let result = try await job.run(command, outputLimit: 1 << 20)
        print("stdout: \(result.standardOutputText)", terminator: result.standardOutputText.hasSuffix("\n") ? "" : "\n")
        status = result.status
    } else {
        status = try await job.spawn(command).wait()
    }
    let accounting = try job.accounting()
    // What the command left behind gets SIGTERM and a second, then the kill.
    try await job.terminate(GracefulTermination(signal: .terminate, grace: .seconds(1)))
    try await job.close()
    print(
        "\(arguments[1]): \(status); \(accounting.processesStarted) process(es) started, CPU \(accounting.userTime + accounting.systemTime)"
    )
    exit(status.shellStatus)
} catch {
    print("run-in-job: \(error)")
    exit(125)
}
