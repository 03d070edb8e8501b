import ArgumentParser
@testable import JobObjects
import Testing
@testable import JobObjectsPayload
@testable import Supervisor

/// `jobsup run`'s options are declared once (`RunFlags`); parsing, the help
/// and the checks all come from those declarations.
struct RunFlagsTests {
    /// A valid value for each kind of value an option takes.
    static let sampleValues: [String: String] = [
        "name": "web", "path": "/tmp/x", "file": "job.yaml", "duration": "500ms", "format": "json",
        "from:to": "TERM:QUIT", "status": "143", "signal": "TERM", "size": "512M", "n": "2",
        "percent": "25", "weight": "7", "list": "0", "spec": "8:0:wbps=10M", "name=value": "nofile=1024",
        "action": "notify", "driver": "cgroupfs",
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
        (["--cgroup-driver", "docker", "--", "x"], "unknown cgroup driver \"docker\": use cgroupfs"),
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

/// Every option that takes a number, given numbers a hostile user would
/// type: each is taken or refused with a message, never a crash (a trap in
/// a conversion would end this test process).
struct HostileNumberTests {
    static let numbers = [
        "1e16", "1e30", "1e300", "-1e300", "-1", "-0", "0", "1e-300", "nan", "NaN", "inf", "-inf", "infinity",
        "0x10", "1_000", "1,5", " 5", "5 ", "", String(repeating: "9", count: 400), "9223372036854775807",
        "18446744073709551616", "1e16s", "1e30s", "1e16m", "1e16h", "1e16ms", "1e16G", "1e16T", "1e300K",
    ]

    static var numericOptions: [String] {
        RunFlags.all.filter { $0.arity != .none && !["name", "path", "file", "format", "action"].contains($0.valueName) }.map(\.name)
    }

    @Test(arguments: numericOptions)
    func everyNumericOptionRefusesOrTakes(_ name: String) throws {
        let flag = try #require(RunFlags.all.first { $0.name == name })
        for number in Self.numbers {
            let value = flag.valueName == "name=value" ? "cpu=\(number)" : flag.valueName == "spec" ? "8:0:wbps=\(number)" : number
            var arguments = [flag.name, value]
            // Options that only make sense with another.
            if flag.name == "--cpu-period" { arguments += ["--cpus", "1"] }
            if flag.name == "--cpu-time-action" { continue }
            do {
                let request = try RunFlags.parse((arguments + ["--", "true"])[...])
                try request.validate()
            } catch {
                #expect(!error.message.isEmpty, "\(arguments)")
                #expect(error.message.count < 400, "\(arguments): the message echoes the value whole")
            }
        }
    }

    /// Hexadecimal, infinities and NaN are numbers to `Double(_:)`, but no
    /// limit or duration a person writes: every numeric option refuses them.
    @Test(arguments: numericOptions)
    func everyNumericOptionRefusesWhatIsNotDecimal(_ name: String) throws {
        let flag = try #require(RunFlags.all.first { $0.name == name })
        guard flag.name != "--cpu-time-action" else { return }
        // (`--rlimit` takes "infinity" as a name for unlimited, as prlimit does.)
        let numbers = ["0x10", "0X1p4", "0x1.8p1", "inf", "nan", "infinity", "1_000", "１０"]
        for number in numbers where !(number == "infinity" && name == "--rlimit") {
            let value = flag.valueName == "name=value" ? "cpu=\(number)" : flag.valueName == "spec" ? "8:0:wbps=\(number)" : number
            var arguments = [flag.name, value]
            if flag.name == "--cpu-period" { arguments += ["--cpus", "1"] }
            #expect(throws: (any Error).self, "\(arguments) was taken") {
                try RunFlags.parse((arguments + ["--", "true"])[...]).validate()
            }
        }
    }
}

/// A payload spec's quantities get the same treatment: refused with the
/// field named, never a crash.
@Suite struct HostileQuantityTests {
    @Test func cpuAndMemoryQuantitiesRefuseOrTake() throws {
        for number in HostileNumberTests.numbers where !number.contains("\n") {
            for field in ["limits: {cpu: '\(number)'}", "requests: {cpu: '\(number)'}", "limits: {memory: '\(number)'}"] {
                let yaml = "name: x\npayload: /tmp\ncommand: [/bin/true]\nresources: {\(field)}\n"
                guard let spec = try? PayloadSpec.decode(yaml: yaml) else { continue }
                // The static checks convert the quantities into limits.
                for problem in spec.problems() {
                    #expect(problem.message.count < 400, "\(field): \(problem.message.prefix(80))…")
                }
            }
        }
    }
}

/// Rules between fields are checked before anything is made: memory
/// protected from reclaim (`memory.min`, `memory.low`) above the cap
/// (`memory.max`) is refused, by jobsup's flags and by the library.
@Suite struct CrossFieldLimitTests {
    @Test(arguments: ["--memory-min", "--memory-low"])
    func protectionAboveTheCapIsRefused(_ flag: String) throws {
        var random = SeededGenerator(seed: flag == "--memory-min" ? 1 : 2)
        for _ in 0..<100 {
            let cap = UInt64.random(in: 4096...(1 << 40), using: &random)
            let protected = UInt64.random(in: 0...(1 << 41), using: &random)
            let arguments = [flag, String(protected), "--memory-max", String(cap), "--", "true"]
            if protected > cap {
                let error = #expect(throws: ValidationError.self, "\(arguments)") { try RunFlags.parse(arguments[...]).validate() }
                let file = flag == "--memory-min" ? "memory.min" : "memory.low"
                let said = "(\(file)) is \(protected) bytes, above memoryMax (memory.max)"
                #expect(error?.message.contains(said) == true, "\(error?.message ?? "")")
            } else {
                #expect(throws: Never.self, "\(arguments)") { try RunFlags.parse(arguments[...]).validate() }
            }
            var limits = JobLimits()
            limits.memoryMax = cap
            if flag == "--memory-min" { limits.memoryMin = protected } else { limits.memoryLow = protected }
            if protected > cap {
                #expect(throws: JobObjectError.self) { try limits.validate() }
            } else {
                #expect(throws: Never.self) { try limits.validate() }
            }
        }
    }
}

/// `--rlimit` values are checked against the kernel's real bounds before
/// anything is made: open files up to fs.nr_open (never unlimited), real-time
/// priority 0...99, nice ceiling 0...40; a soft value above the hard one.
@Suite struct ResourceLimitBoundTests {
    @Test func valuesPastTheKernelsBoundsAreRefused() throws {
        let ceiling = ResourceLimit.openFilesCeiling
        var random = SeededGenerator(seed: 41)
        var cases: [(spec: String, refused: Bool)] = [
            ("nofile=unlimited", true), ("nofile=\(ceiling)", false), ("nofile=\(ceiling + 1)", true),
        ]
        for _ in 0..<100 {
            let n = UInt64.random(in: 0...(1 << 40), using: &random)
            cases.append(("nofile=\(n)", n > ceiling))
            let priority = UInt64.random(in: 0...200, using: &random)
            cases.append(("rtprio=\(priority)", priority > 99))
            cases.append(("nice=\(priority)", priority > 40))
            let (soft, hard) = (UInt64.random(in: 0...4096, using: &random), UInt64.random(in: 0...4096, using: &random))
            cases.append(("memlock=\(soft):\(hard)", soft > hard))
        }
        for (spec, refused) in cases {
            let arguments = ["--rlimit", spec, "--", "true"]
            if refused {
                let error = #expect(throws: ValidationError.self, "\(spec)") { try RunFlags.parse(arguments[...]).validate() }
                #expect((error?.message.count ?? 0) < 300, "\(spec): \(error?.message ?? "")")
            } else {
                #expect(throws: Never.self, "\(spec)") { try RunFlags.parse(arguments[...]).validate() }
            }
        }
    }
}
