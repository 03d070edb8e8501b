/// How long each set runs: `--smoke` runs everything once, briefly, so the
/// harness cannot rot; the default is what `scripts/bench` reports.
struct Settings {
    var smoke = false
    var only: Set<String>?
    var output: String?

    var spawnRounds: Int { smoke ? 1 : 15 }
    var spawnBatch: Int { smoke ? 2 : 20 }
    /// Foundation's Process is slow; fewer of it keep a round short.
    var foundationBatch: Int { smoke ? 1 : 10 }

    var memoryRounds: Int { smoke ? 1 : 6 }
    var memoryBatch: Int { smoke ? 2 : 40 }
    var smallParent: Int { 20 << 20 }
    var bigParent: Int { smoke ? 256 << 20 : 2 << 30 }

    var signalRounds: Int { smoke ? 1 : 10 }
    var signalBatch: Int { smoke ? 2 : 50 }

    var teardownSizes: [Int] { smoke ? [1, 10] : [1, 10, 100, 1000] }
    func teardownRounds(_ size: Int) -> Int { smoke ? 1 : (size >= 1000 ? 8 : size >= 100 ? 12 : 20) }

    var lifecycleRounds: Int { smoke ? 1 : 10 }
    var lifecycleBatch: Int { smoke ? 2 : 20 }

    var exitRounds: Int { smoke ? 1 : 10 }
    var exitBatch: Int { smoke ? 2 : 30 }

    var throughputRounds: Int { smoke ? 1 : 5 }
    var throughputTotal: Int { smoke ? 8 : 200 }
    var throughputConcurrency: [Int] { smoke ? [1, 4] : [1, 2, 8] }

    func runs(_ set: String) -> Bool { only?.contains(set) ?? true }

    static let allSets = ["spawn", "memory", "signal", "teardown", "lifecycle", "exit-event", "throughput"]

    static func parse(_ arguments: [String]) throws -> Settings {
        var settings = Settings()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--smoke": settings.smoke = true
            case "--only":
                guard let list = rest.popFirst() else { throw UsageError("--only needs a list: \(allSets.joined(separator: ","))") }
                let sets = Set(list.split(separator: ",").map(String.init))
                if let unknown = sets.subtracting(allSets).first {
                    throw UsageError("unknown set \(unknown); sets: \(allSets.joined(separator: ","))")
                }
                settings.only = sets
            case "--output":
                guard let path = rest.popFirst() else { throw UsageError("--output needs a file") }
                settings.output = path
            case "-h", "--help": throw UsageError(nil)
            default: throw UsageError("unknown argument \(argument)")
            }
        }
        return settings
    }
}

struct UsageError: Error {
    var problem: String?
    init(_ problem: String?) { self.problem = problem }

    static let usage = """
        usage: jobobjects-compare [--smoke] [--only SET[,SET...]] [--output FILE]

        Runs the side-by-side comparison of JobObjects against the C floors and
        Foundation's Process / swift-subprocess, interleaving the variants of each
        set (A B A B ...), and writes raw samples as JSON (stdout, or FILE).
        Sets: \(Settings.allSets.joined(separator: ", ")).
        --smoke runs every set once, briefly (exit status 1 if any variant failed).
        """
}
