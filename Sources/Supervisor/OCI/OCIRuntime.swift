import Glibc
import JobObjects

/// `jobsup-runc`: the OCI runtime face of jobsup, a runc-compatible command
/// set for containerd's runc shim, podman and CRI-O. The same executable
/// answers to this name (a link named jobsup-runc) or to `jobsup runc …`.
/// Global flags come before the command, as runc takes them.
enum OCIRuntime {
    static let defaultRoot = "/run/jobsup-runc"

    static let usage = """
        usage: jobsup-runc [global flags] COMMAND [flags] ID

        An OCI runtime (runc's command set) that runs a bundle as a HostProcess-style
        payload: host processes in a job object, root.path mounted at the sandbox mount
        point in a private mount namespace. Point an engine at it: containerd's runc shim
        with BinaryName, podman --runtime PATH.

        Commands:
          create --bundle DIR [--pid-file FILE] [--console-socket SOCKET] [--preserve-fds N] ID
                                  make the job and hold init before execve; with
                                  process.terminal, init's terminal goes to SOCKET
          start ID                let init run
          run --bundle DIR [--detach] [create's flags] ID
                                  create and start; in the foreground, pass signals on
                                  to init, wait, end what it left, delete, exit with
                                  init's status
          exec [--process FILE] [--detach] [--pid-file FILE] [--cwd DIR]
               [--tty --console-socket SOCKET] ID [COMMAND…]
                                  one more process in the job and init's mount
                                  namespace; without --detach, exits with its status
          state ID                the OCI state as JSON
          kill [--all] ID [SIGNAL]
                                  signal init (every member with --all; default TERM)
          delete [--force] ID     end the job and remove what create made
          list [--format table|json] [--quiet]
          ps [--format table|json] ID
          pause ID / resume ID    freeze or thaw the job
          events [--stats] [--interval 5s] ID
                                  the job's statistics as runc's JSON (once with
                                  --stats), and a line per OOM kill, until it stops
          update --resources FILE|- ID
                                  set a LinuxResources JSON object's limits on the job
          features                what this runtime supports, as JSON

        Global flags:
          --root DIR              container state (default \(defaultRoot))
          --log FILE              append errors here as well as to stderr
          --log-format text|json  json: {"level":"error","msg":…} lines, which the
                                  containerd shim and conmon read
          --debug                 log debug lines too
          --systemd-cgroup        linux.cgroupsPath is slice:prefix:name: the job goes in
                                  the scope prefix-name.scope that systemd makes in slice
                                  with Delegate=yes (default system.slice:jobsup-runc:ID)
          --version               print the version

        Exit status: 0 on success, 1 on any error (said on stderr and in --log).
        """

    /// Runs the command line (`arguments` excludes the program name) and
    /// exits.
    static func main(_ arguments: ArraySlice<String>) -> Never {
        var log = OCIRuntimeLog()
        do throws(OCIRuntimeError) {
            var rest = arguments
            var globals: [String] = []
            while let first = rest.first, first.hasPrefix("-") {
                globals.append(rest.removeFirst())
                if ["--root", "-root", "--log", "-log", "--log-format", "-log-format", "--criu", "--rootless"].contains(first),
                    let value = rest.first
                {
                    globals.append(value)
                    rest.removeFirst()
                }
            }
            let flags = try OCIArguments(
                globals[...], valued: ["root", "log", "log-format", "criu", "rootless"],
                switches: ["debug", "systemd-cgroup", "version", "help"], aliases: ["v": "version", "h": "help"])
            log.path = flags["log"]
            log.json = flags["log-format"] == "json"
            log.debug = flags.has("debug")
            if let format = flags["log-format"], format != "json", format != "text" {
                throw OCIRuntimeError("--log-format is text or json, not \"\(format)\"")
            }
            if flags.has("version") || rest.first == "--version" || rest.first == "-v" {
                print("jobsup-runc version \(JobsupVersion.text)\nspec: 1.0.2")
                exit(0)
            }
            if flags.has("help") || rest.isEmpty || rest.first == "help" {
                print(usage)
                exit(rest.isEmpty && !flags.has("help") ? 1 : 0)
            }
            let root = flags["root"] ?? defaultRoot
            guard root.hasPrefix("/") else { throw OCIRuntimeError("--root must be an absolute path") }
            let command = rest.removeFirst()
            log.debug("\(command) \(rest.joined(separator: " "))")
            try run(command, rest, root: root, systemdCgroup: flags.has("systemd-cgroup"))
            exit(0)
        } catch {
            log.error(error.message)
            exit(1)
        }
    }

    private static func run(_ command: String, _ rest: ArraySlice<String>, root: String, systemdCgroup: Bool) throws(OCIRuntimeError) {
        switch command {
        case "create":
            let arguments = try OCIArguments(
                rest, valued: ["bundle", "pid-file", "console-socket", "preserve-fds"],
                switches: ["no-pivot", "no-new-keyring"], aliases: ["b": "bundle"])
            try OCICreate(root: root, arguments: arguments, systemdCgroup: systemdCgroup).run()
        case "run":
            let arguments = try OCIArguments(
                rest, valued: ["bundle", "pid-file", "console-socket", "preserve-fds"],
                switches: ["detach", "no-pivot", "no-new-keyring"], aliases: ["b": "bundle", "d": "detach"])
            exit(try OCIRun.run(root: root, arguments: arguments, systemdCgroup: systemdCgroup))
        case "exec":
            let arguments = try OCIArguments(
                rest, valued: ["process", "pid-file", "console-socket", "preserve-fds", "cwd"], switches: ["detach", "tty"],
                aliases: ["p": "process", "d": "detach", "t": "tty"], commandAfterID: true)
            exit(try OCIExec(root: root, arguments: arguments).run())
        case OCIOwnerWatch.command:
            try OCIOwnerWatch.run(root: root, rest)
        case OCISandboxHold.command:
            OCISandboxHold.run()
        case "start":
            try OCILifecycle(root: root, id: try OCIArguments(rest, valued: [], switches: []).containerID(command)).start()
        case "state":
            let id = try OCIArguments(rest, valued: [], switches: []).containerID(command)
            print(try OCIContainerRecord.read(root: root, id: id).stateJSON(root: root))
        case "kill":
            let arguments = try OCIArguments(rest, valued: [], switches: ["all"], aliases: ["a": "all"])
            let id = try arguments.containerID(command)
            let name = arguments.positionals.dropFirst().first ?? "TERM"
            guard let signal = Signal(name: name) else { throw OCIRuntimeError("unknown signal \"\(name.prefix(40))\"") }
            try OCILifecycle(root: root, id: id).kill(signal, all: arguments.has("all"))
        case "delete":
            let arguments = try OCIArguments(rest, valued: [], switches: ["force"], aliases: ["f": "force"])
            try OCILifecycle(root: root, id: try arguments.containerID(command)).delete(force: arguments.has("force"))
        case "update":
            let arguments = try OCIArguments(rest, valued: ["resources"], switches: [], aliases: ["r": "resources"])
            let id = try arguments.containerID(command)
            guard let resources = arguments["resources"] else {
                throw OCIRuntimeError("update needs --resources FILE (or - for standard input): a LinuxResources JSON object")
            }
            try OCILifecycle(root: root, id: id).update(resources: resources)
        case "pause", "resume":
            let lifecycle = try OCILifecycle(root: root, id: try OCIArguments(rest, valued: [], switches: []).containerID(command))
            try command == "pause" ? lifecycle.pause() : lifecycle.resume()
        case "ps":
            let arguments = try OCIArguments(rest, valued: ["format"], switches: [], aliases: ["f": "format"])
            let pids = try OCILifecycle(root: root, id: try arguments.containerID(command)).processIDs()
            if arguments["format"] == "json" {
                print(JSONObject.array(pids.map(String.init)))
            } else {
                print("PID\n" + pids.map(String.init).joined(separator: "\n"))
            }
        case "events":
            let arguments = try OCIArguments(rest, valued: ["interval"], switches: ["stats"])
            let lifecycle = try OCILifecycle(root: root, id: try arguments.containerID(command))
            let events = try OCIEvents(lifecycle: lifecycle, interval: arguments["interval"])
            try arguments.has("stats") ? events.printStats() : events.stream()
        case "list":
            let arguments = try OCIArguments(rest, valued: ["format"], switches: ["quiet"], aliases: ["f": "format", "q": "quiet"])
            OCIQueries.list(root: root, json: arguments["format"] == "json", quiet: arguments.has("quiet"))
        case "features":
            print(OCIQueries.featuresJSON)
        default:
            throw OCIRuntimeError(
                "unknown command \"\(command.prefix(40))\" (create, start, exec, state, kill, delete, list, ps, pause, resume, update, features)"
            )
        }
    }

    /// Runs async library work from this synchronous command.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        try CallingThreadExecutor.run(body)
    }
}
