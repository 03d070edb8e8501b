import ArgumentParser
import Testing
@testable import Supervisor

/// `jobsup run` reads well-formed command lines with its own parser and
/// leaves the rest to ArgumentParser: both must make the same request from
/// every command line the fast parser takes, and the fast parser must know
/// every option `jobsup run --help` lists.
struct RunFastParserTests {
    /// One valid example of every option of `jobsup run`.
    static let examples: [[String]] = [
        ["--name", "web"], ["--name=web"], ["--cgroup-parent", "/sys/fs/cgroup/x"], ["-f", "job.yaml"],
        ["--grace", "500ms"], ["--signal-job"], ["--events", "json"], ["--events=human"],
        ["--events-file", "/tmp/e.jsonl"], ["--stats"], ["--stats-format", "json"],
        ["--memory-max", "512M"], ["--memory-high", "1G"], ["--memory-low", "64M"], ["--memory-min", "32M"],
        ["--swap-max", "0"], ["--oom-kill-group"], ["--pids-max", "64"], ["--cpus", "1.5"],
        ["--cpu-percent", "25"], ["--cpus", "1", "--cpu-period", "50ms"], ["--cpu-weight", "200"],
        ["--cpu-windows-weight", "7"], ["--cpu-idle"], ["--cpuset", "0-1"], ["--cpuset-mems", "0"],
        ["--io-max", "8:0:wbps=10M", "--io-max", "8:16:riops=100"], ["--io-weight", "50"],
        ["--rlimit", "nofile=1024", "--rlimit", "core=0"], ["--cpu-time", "30s"],
        ["--cpu-time", "1m", "--cpu-time-action", "notify"],
        ["--rewrite-signal", "TERM:QUIT", "--rewrite-signal=USR1:0"], ["--success-exit", "143"],
        ["--parent-death-signal", "TERM"], ["--reset-signals"],
    ]

    @Test(arguments: examples)
    func bothParsersMakeTheSameRequest(_ options: [String]) throws {
        for command in [["--", "sh", "-c", "exit 3"], ["/bin/true", "--stats"]] {
            // -f with --rlimit is rejected by both; the command is optional with -f.
            let arguments = options + command
            let fast = try #require(RunFastParser.parse(arguments[...]), "\(arguments)")
            let slow = try RunCommand.parse(arguments)
            #expect(fast == slow.request, "\(arguments)")
        }
    }

    @Test func everyOptionInTheHelpHasAnExample() {
        let help = RunCommand.helpMessage(columns: 1000)
        // The option list: lines that start with an option's name.
        let listed = Set(help.split(separator: "\n").compactMap { line -> String? in
            let first = line.drop(while: { $0 == " " }).split(separator: " ").first.map(String.init)
            guard let first, first.hasPrefix("-"), first != "-h," else { return nil }
            return first
        })
        let covered = Set(Self.examples.joined().filter { $0.hasPrefix("-") }.map { String($0.split(separator: "=")[0]) })
        #expect(listed == covered)
    }

    /// Anything else goes to ArgumentParser, which gives the error or help.
    @Test(arguments: [
        ["--help"], ["-h"], ["--no-such-option", "--", "true"], ["--grace", "soon", "--", "true"],
        ["--events", "xml", "--", "true"], ["--name"], ["--name", "--", "true"], ["--stats=yes", "--", "true"],
        ["--name", "a", "--name", "b", "--", "true"], ["--stats", "--stats", "--", "true"], ["-f=job.yaml"],
    ])
    func leavesTheRestToArgumentParser(_ arguments: [String]) {
        #expect(RunFastParser.parse(arguments[...]) == nil)
    }
}
