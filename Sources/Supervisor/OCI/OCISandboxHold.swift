import Glibc

/// A pod's sandbox container (the CRI's "pause" container): it exists only
/// to hold the pod's cgroup and lifetime, and its image's entrypoint
/// (`/pause`) is not a host program. Its init is this executable instead,
/// run as `jobsup-runc hold-sandbox`, which does what pause does: waits,
/// reaps any child it is given, and exits 0 on SIGTERM or SIGINT.
enum OCISandboxHold {
    /// The annotations by which the CRI plugin of containerd, and CRI-O,
    /// mark a pod's sandbox.
    static let markers = [("io.kubernetes.cri.container-type", "sandbox"), ("io.kubernetes.cri-o.ContainerType", "sandbox")]

    /// The hidden command that init runs.
    static let command = "hold-sandbox"

    static func isPodSandbox(annotation: (String) -> String?) -> Bool {
        markers.contains { annotation($0.0) == $0.1 }
    }

    static func run() -> Never {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGCHLD] { sigaddset(&signals, signal) }
        sigprocmask(SIG_BLOCK, &signals, nil)
        while true {
            let signal = sigwaitinfo(&signals, nil)
            if signal == SIGTERM || signal == SIGINT { exit(0) }
            if signal == SIGCHLD {
                var status: Int32 = 0
                while waitpid(-1, &status, WNOHANG) > 0 {}
            }
        }
    }
}
