import ArgumentParser
import CJobShim
import Glibc
import JobObjects

/// `jobsup`: runs payloads as Windows-style job objects on cgroup v2.
struct JobSup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobsup",
        abstract: "Run programs as job objects: grouped, limited, accounted for, and gone when their time is up.",
        discussion: """
            jobsup puts a payload and every process it starts into one cgroup v2 job. \
            No process can leave the job by forking or setsid; when the payload's init \
            exits, the rest get SIGTERM, then SIGKILL after a grace period, and the job \
            is removed. If jobsup itself dies, even by SIGKILL, the job dies with it. \
            Named jobs can be listed, watched, signalled, frozen, joined and re-limited \
            from another shell.

            Exit status: run and exec exit with the payload's status (128+N when signal N \
            ended it); 0 when a management command worked, 1 when it failed; 2 for a bad \
            option or file; 125 when jobsup itself failed; 126 when the command cannot be \
            executed; 127 when it is not found.

            Examples:
              jobsup run --memory-max 2G -- make -j8
              jobsup run --name web -- ./server &
              jobsup list
              jobsup stats web --format json
              jobsup limits web --cpus 0.5
              jobsup kill web
            """,
        version: "jobsup \(JobsupVersion.text)",
        subcommands: [
            RunCommand.self, ListCommand.self, StatsCommand.self, EventsCommand.self,
            SignalCommand.self, KillCommand.self, FreezeCommand.self, ThawCommand.self,
            ExecCommand.self, LimitsCommand.self, InfoCommand.self, ReclaimCommand.self,
        ])
}

/// The entry point: ArgumentParser's, except that a usage error exits 2
/// (ArgumentParser's own code for it is EX_USAGE, 64).
///
/// `main` is synchronous on purpose: an `async` main ends the main thread
/// with `pthread_exit` (in `dispatch_main`), and in a statically linked
/// binary that forced unwind first sorts every unwind-table entry of the
/// whole executable — tens of milliseconds on `jobsup run`'s critical path.
/// The main thread instead waits for the command's task and then exits.
@main
enum JobSupMain {
    static func main() {
        // One malloc arena: any thread besides the main one (a Task.sleep's
        // timer thread during a grace period) would otherwise get its own at
        // its first allocation (128 MiB of address space reserved, fresh
        // pages to fault in, more to tear down at exit), for the few
        // allocations it makes.
        _ = jobshim_use_one_malloc_arena()
        // `jobsup run` with a valid command line skips ArgumentParser, which
        // builds its model of every command by reflection (milliseconds in a
        // static binary); its options are jobsup's own anyway (RunFlags).
        // execute() exits, so this never falls through; help and errors go
        // the long way, for ArgumentParser's layout.
        let arguments = CommandLine.arguments
        // The OCI runtime face: a link named jobsup-runc, or `jobsup runc …`.
        if arguments.first.map({ $0.split(separator: "/").last == "jobsup-runc" }) == true {
            OCIRuntime.main(arguments.dropFirst())
        }
        if arguments.count > 1, arguments[1] == "runc" { OCIRuntime.main(arguments.dropFirst(2)) }
        if arguments.count > 1, arguments[1] == "run", let request = try? RunFlags.parse(arguments.dropFirst(2)),
            (try? request.validate()) != nil
        {
            _ = try? CallingThreadExecutor.run { await request.execute() }
        }
        do {
            var command = try JobSup.parseAsRoot()
            if let asyncCommand = command as? AsyncParsableCommand {
                // Only the task touches it while the main thread waits.
                nonisolated(unsafe) var command = asyncCommand
                try CallingThreadExecutor.run { try await command.run() }
            } else {
                try command.run()
            }
        } catch {
            if JobSup.exitCode(for: error) == .validationFailure {
                Diagnostics.write(2, JobSup.fullMessage(for: error) + "\n")
                Glibc.exit(SupervisorExit.usage)
            }
            JobSup.exit(withError: error)
        }
    }
}
