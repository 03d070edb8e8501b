import ArgumentParser
import Testing
@testable import Supervisor

/// `jobsup run`'s options are declared once (`RunFlags`); parsing, the help
/// and the checks all come from those declarations.
struct RunFlagsTests {
    /// A valid value for each kind of value an option takes.
    static let sampleValues: [String: String] = [
        "name": "web", "path": "/tmp/x", "file": "job.yaml", "duration": "500ms", "format": "json",
        "from:to": "TERM:QUIT", "status": "143", "signal": "TERM", "size": "512M", "n": "2",
        "percent": "25", "weight": "7", "list": "0", "spec": "8:0:wbps=10M", "name=value": "nofile=1024",
        "action": "notify",
    ]

    /// Every declared option parses in both spellings and changes the request.
    @Test func everyDeclaredOptionParses() throws {
        for flag in RunFlags.all {
            var spellings: [[String]] = [[flag.name]]
            if flag.arity != .none {
                let value = try #require(Self.sampleValues[flag.valueName], "no sample value for <\(flag.valueName)> (\(flag.name))")
                spellings = [[flag.name, value]] + (flag.name.hasPrefix("--") ? [["\(flag.name)=\(value)"]] : [])
            }
            for spelling in spellings {
                let request = try RunFlags.parse((spelling + ["--", "true"])[...])
                #expect(request != RunRequest(argv: ["true"]), "\(spelling) changed nothing")
                #expect(request.argv == ["true"])
            }
        }
    }

    @Test func theHelpListsEveryOptionOnce() {
        let help = RunCommand.helpMessage(columns: 100)
        for flag in RunFlags.all {
            let usage = flag.arity == .none ? "  \(flag.name)\n" : "  \(flag.name) <\(flag.valueName)>\n"
            #expect(help.components(separatedBy: usage).count == 2, "\(flag.name)")
        }
        let limits = LimitsCommand.helpMessage(columns: 100)
        for flag in RunFlags.limits { #expect(limits.contains("  \(flag.name)"), "\(flag.name)") }
    }

    @Test func theCommandStartsAtDashDashOrTheFirstNonOption() throws {
        #expect(try RunFlags.parse(["--stats", "--", "ls", "--all"]).argv == ["ls", "--all"])
        #expect(try RunFlags.parse(["--stats", "ls", "--all"]).argv == ["ls", "--all"])
        #expect(try RunFlags.parse(["--success-exit", "-1", "--", "x"]).signals.successExit == ["-1"])
        let request = try RunFlags.parse(["--rlimit", "core=0", "--rlimit=nofile=10", "--memory-max", "1G", "--", "x"])
        #expect(request.limits.rlimit == ["core=0", "nofile=10"] && request.limits.memoryMax == "1G")
    }

    @Test(arguments: [
        (["--nope", "--", "x"], "Unknown option '--nope'"),
        (["--name"], "--name needs a value"),
        (["--name", "--", "x"], "--name needs a value"),
        (["--name", "--stats", "--", "x"], "--name needs a value"),
        (["--name", "a", "--name", "b", "--", "x"], "--name is given twice"),
        (["--stats", "--stats", "--", "x"], "--stats is given twice"),
        (["--stats=yes", "--", "x"], "--stats takes no value"),
        (["--grace", "soon", "--", "x"], "invalid --grace \"soon\""),
        (["--events", "xml", "--", "x"], "invalid --events \"xml\": give json or human"),
    ])
    func badCommandLinesSayWhatIsWrong(_ arguments: [String], _ message: String) {
        do {
            _ = try RunFlags.parse(arguments[...])
            Issue.record("\(arguments) parsed")
        } catch {
            #expect(error.message.contains(message), "\(arguments): \(error.message)")
        }
    }
}
