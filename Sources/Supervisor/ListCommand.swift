import ArgumentParser
import JobObjects

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the jobs under the job parent: name, state, processes, memory, CPU.",
        discussion: """
            STATE is running (processes in it), frozen, empty, or abandoned (the process \
            that created it to kill it on close is gone, and nothing will end it: see \
            jobsup reclaim). MEMORY is memory.current \
            ('-' without the memory controller); CPU is the user+system time of every \
            process that ran in the job.

            Examples:
              jobsup list
              jobsup list --cgroup-parent /system.slice/ci.service/jobobjects --format json
            """)

    @OptionGroup var cgroupParent: CgroupParentOption

    @Option(help: ArgumentHelp("human (a table) or json (an array of objects).", valueName: "format"))
    var format: OutputFormat = .human

    func run() async throws {
        await management { () async throws(JobObjectError) in
            let parents = try JobParent.lookup(cgroupParent.path, driver: cgroupParent.driver)
            var rows: [[String]] = [["NAME", "STATE", "PROCESSES", "MEMORY", "CPU"]]
            var objects: [String] = []
            for parent in parents {
                for name in parent.jobNames() {
                    // A job may end between the listing and the look.
                    guard let job = try? JobObject.open(name: name, parent: parent.path),
                        let accounting = try? job.accounting()
                    else { continue }
                    let frozen = (try? job.isFrozen) ?? false
                    let state =
                        job.isAbandoned ? "abandoned" : frozen ? "frozen" : accounting.activeProcesses > 0 ? "running" : "empty"
                    rows.append([
                        name, state, String(accounting.activeProcesses),
                        accounting.memoryCurrent.map(StatsReport.size) ?? "-", accounting.totalTime.secondsText + "s",
                    ])
                    var o = JSONObject()
                    o.add("name", name)
                    o.add("state", state)
                    o.add("processes", accounting.activeProcesses)
                    o.add("memory_current_bytes", accounting.memoryCurrent)
                    o.add("cpu_usec", accounting.totalTime.microseconds)
                    objects.append(o.text)
                }
            }
            if format == .json {
                Diagnostics.output(JSONObject.array(objects))
            } else {
                Diagnostics.output(Self.table(rows))
            }
        }
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }.joined()
        }.joined(separator: "\n")
    }
}
