import BenchSupport
import Foundation
import Glibc
import JobObjects

/// jobobjects-compare: the side-by-side harness behind BENCHMARKS.md.
@main
struct Compare {
    static func main() async {
        let settings: Settings
        do {
            settings = try Settings.parse(Array(CommandLine.arguments.dropFirst()))
        } catch let error as UsageError {
            if let problem = error.problem { printError("jobobjects-compare: \(problem)\n") }
            printError(UsageError.usage + "\n")
            exit(error.problem == nil ? 0 : 2)
        } catch {
            exit(2)
        }
        do {
            let failed = try await run(settings)
            exit(failed && settings.smoke ? 1 : 0)
        } catch {
            printError("jobobjects-compare: \(error)\n")
            exit(1)
        }
    }

    /// Returns true when any variant failed.
    static func run(_ settings: Settings) async throws -> Bool {
        let parent = try JobParent.resolve()
        // Keeps the job parent in place for the whole run, so neither the
        // library nor the floors create and remove it between measurements.
        let anchor = try JobObject.create(name: Workloads.uniqueJobName("bench-anchor"))
        let delegation = try parent.report()
        var report = Report(
            host: Report.Host(
                spawnPath: KernelFeatures.current.spawnPath.description,
                kernelFeatures: KernelFeatures.current.description,
                jobParent: parent.path.string,
                controllers: delegation.controllers,
                cgroupKill: delegation.cgroupKill,
                smoke: settings.smoke))
        let sets = Sets(settings: settings, parent: parent.path.string)
        let steps: [(String, () async throws -> SetResult)] = [
            ("spawn", sets.spawn), ("memory", sets.memory), ("signal", sets.signal), ("teardown", sets.teardown),
            ("lifecycle", sets.lifecycle), ("exit-event", sets.exitEvent), ("throughput", sets.throughput),
        ]
        var failed = false
        for (id, step) in steps where settings.runs(id) {
            let start = MonotonicClock.now()
            printError("jobobjects-compare: \(id) ...")
            do {
                let result = try await step()
                report.sets.append(result)
                let seconds = Double(MonotonicClock.now() - start) / 1e9
                printError(
                    " \(result.variants.count) variants, \(result.skipped.count) skipped, \(result.failures.count) failed (\(String(format: "%.1f", seconds)) s)\n"
                )
                for skip in result.skipped { printError("  skipped \(skip.name): \(skip.reason)\n") }
                for failure in result.failures { printError("  FAILED \(failure)\n") }
                failed = failed || !result.failures.isEmpty
            } catch {
                printError(" FAILED: \(error)\n")
                report.sets.append(SetResult(id: id, title: id, failures: ["\(error)"]))
                failed = true
            }
        }
        try await anchor.close()
        _ = JobObject.stopWatchdogIfIdle()

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(report)
        if let output = settings.output {
            try data.write(to: URL(fileURLWithPath: output))
        } else {
            FileHandle.standardOutput.write(data)
        }
        return failed
    }
}

/// Writes `text` to standard error as is.
func printError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = write(2, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { break }
            done += n
        }
    }
}
