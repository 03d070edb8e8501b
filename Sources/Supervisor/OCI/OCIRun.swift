import Glibc
import JobObjects

/// `run [create's flags] [--detach] ID`: create and start in one call. With
/// `--detach` it returns once init runs, and the container belongs to the
/// caller as after `create`. In the foreground it owns the container
/// itself: it passes on the signals a foreground process is sent, waits for
/// init, ends what init left (`SIGTERM`, the grace, then `cgroup.kill`, as
/// `kill --all` after init's exit does), deletes the container and exits
/// with init's status — so killing `run` with SIGKILL ends the container
/// too (its owner watch).
enum OCIRun {
    /// Passed on to init while `run` waits in the foreground.
    static let forwarded: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH]

    static func run(root: String, arguments: OCIArguments, systemdCgroup: Bool) throws(OCIRuntimeError) -> Int32 {
        let detach = arguments.has("detach")
        var create = try OCICreate(root: root, arguments: arguments, systemdCgroup: systemdCgroup)
        if !detach { create.owner = getpid() }
        // Caught from before init exists: a signal meanwhile waits for it.
        let route = SignalRoute()
        let notifier: SignalNotifier?
        do {
            notifier = detach ? nil : try SignalNotifier(forwarded) { route.receive($0) }
        } catch {
            throw OCIRuntimeError(error.message)
        }
        defer { withExtendedLifetime(notifier) {} }
        let process = try create.run()
        let container = try OCILifecycle(root: root, id: create.id)
        do {
            try container.start()
        } catch {
            try? container.delete(force: true)
            throw error
        }
        if detach { return 0 }
        route.open { signal in try? process.signal(Signal(signal)) }
        let status = (try? OCIRuntime.wait { await process.wait() }) ?? .exited(code: 1)
        route.close()
        // delete ends what init left first (SIGTERM, the grace, cgroup.kill).
        try container.delete(force: true)
        return status.shellStatus
    }
}
