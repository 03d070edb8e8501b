import JobObjects
import Glibc
import Synchronization
import SystemPackage

/// A running HostProcess-style payload: its job, its init process, its
/// storage and identity, and the end-of-life sequence that releases them.
///
/// `start` validates the spec as a whole (every problem reported with its
/// field), then allocates the ephemeral user, creates the storage, the job
/// (with the spec's limits) and the janitor, makes the host-visible mounts
/// (host mode) and spawns init — in a private mount namespace with the
/// mounts made by the child in private mode. If any step fails, the ones
/// before it are undone and nothing is left.
///
/// When init exits — or is killed, or the job is terminated — the end runs
/// by itself, every step even if one fails: what init left gets SIGTERM,
/// then `cgroup.kill` after the grace period; once the job is empty its
/// mounts are unmounted last first (host mode; in private mode the kernel
/// dropped them with the namespace, which is checked), the mount points and
/// the record are removed, the cgroup is removed, the ephemeral uid is
/// released, and the janitor dismissed. Init's status is the job's. If the
/// owner dies first, the owner-death watchdog kills the job and the janitor
/// does the rest.
///
/// ```swift
/// let spec = try PayloadSpec.load(path: "node-admin.yaml")
/// let outcome = try await Payload.run(spec)
/// print(outcome.initStatus, outcome.cleanedUp)
/// ```
public final class Payload: Sendable {
    /// How to run a payload, beyond its spec: what `jobsup run -f` sets.
    public struct RunOptions: Sendable {
        /// The cgroup under which the job is created (see `JobParent.resolve`).
        public var cgroupParent: FilePath?
        /// Init's standard input.
        public var standardInput: SpawnOptions.StandardIO = .inherit
        /// Init's standard output.
        public var standardOutput: SpawnOptions.StandardIO = .inherit
        /// Init's standard error.
        public var standardError: SpawnOptions.StandardIO = .inherit
        /// Further descriptors for init: child fd → caller fd (3 and up).
        public var extraDescriptors: [Int32: FileDescriptor] = [:]
        /// Init's process group or session.
        public var processGroup: SpawnOptions.ProcessGroup = .inherit
        /// Signals init starts with blocked (`SpawnOptions.blockedSignals`).
        public var blockedSignals: Set<Int32> = []
        /// Overrides the spec's terminationGracePeriodSeconds.
        public var grace: Duration?
        /// Sweep /run/jobobjects for storage whose owner and janitor both
        /// died before starting (see `reclaimStale()`).
        public var reclaimStale = true
        /// Subscribe to the job's events before init starts, so that
        /// `Payload.events` holds all of them; a stream taken from
        /// `payload.job.events` after `start` returns can begin too late
        /// (a short-lived payload's job may be closed already).
        public var followEvents = false
        /// Report processes forked inside the job (see
        /// `JobObject.create(trackDescendants:)`); a caller that never reads
        /// the events can leave the process events connector closed.
        public var trackDescendants = true

        /// Defaults, with the job made under `cgroupParent`.
        public init(cgroupParent: FilePath? = nil) {
            self.cgroupParent = cgroupParent
        }
    }

    /// The spec it runs, checked.
    public let spec: PayloadSpec
    /// The job its processes are in.
    public let job: JobObject
    /// The payload's first process.
    public let initProcess: ProcessHandle
    /// Where the payload directory is mounted (CONTAINER_SANDBOX_MOUNT_POINT).
    public let sandboxMountPoint: FilePath
    /// The payload's own directory, /run/jobobjects/NAME.
    public let storageRoot: FilePath
    /// Whether its mounts are in a private namespace or visible to the host.
    public let mode: PayloadSpec.StorageMode
    /// The uid, gid and groups init runs with; nil: the owner's.
    public let credentials: SpawnOptions.Credentials?
    /// The uid allocated for the job, when it runs as an ephemeral user.
    public var ephemeralUID: uid_t? { lease?.uid }
    /// The capabilities init keeps (nil: as execve gives them).
    public let capabilities: Set<Capability>?
    /// Whether init runs with no_new_privs (also set when a seccomp filter needs it).
    public let noNewPrivileges: Bool
    /// The mount namespace of init ("mnt:[4026532…]") in private mode.
    public let mountNamespace: String?
    /// The job's events from before init started (`RunOptions.followEvents`).
    public let events: AsyncStream<JobEvent>?

    /// An nsfs descriptor of init's mount namespace (private mode), held
    /// so that its identity cannot be recycled before the end checks it.
    private let namespaceFD = Mutex<CInt?>(nil)
    private let lease: EphemeralUserLease?
    private let storage: PayloadStorage
    private let janitor: PayloadJanitor
    private let grace: Duration
    // Set once in init, before anything else can see the payload.
    nonisolated(unsafe) private var lifecycle: Task<PayloadOutcome, Never>!

    private init(
        spec: PayloadSpec, plan: PayloadPlan, job: JobObject, initProcess: ProcessHandle,
        credentials: SpawnOptions.Credentials?, lease: EphemeralUserLease?, storage: PayloadStorage,
        janitor: PayloadJanitor, grace: Duration, mountNamespace: String?, namespaceFD: CInt?,
        events: AsyncStream<JobEvent>?
    ) {
        self.spec = spec
        self.job = job
        self.initProcess = initProcess
        sandboxMountPoint = FilePath(plan.sandboxMountPoint)
        storageRoot = FilePath(plan.storageRoot)
        mode = plan.mode
        self.credentials = credentials
        capabilities = plan.capabilities
        noNewPrivileges = plan.noNewPrivileges
        self.mountNamespace = mountNamespace
        self.events = events
        self.lease = lease
        self.storage = storage
        self.janitor = janitor
        self.grace = grace
        self.namespaceFD.withLock { $0 = namespaceFD }
        lifecycle = Task { [self] in await self.endOfLife() }
    }

    // MARK: Running

    /// Validates `spec`, sets up its storage and identity, creates its job
    /// and starts init. Returns once init has exec'd. Nothing is left
    /// behind when this throws.
    public static func start(_ spec: PayloadSpec, options: RunOptions = RunOptions()) async throws(JobObjectError) -> Payload {
        var planner = PayloadPlanner(spec: spec)
        guard let plan = planner.plan() else {
            throw planner.problems.error(
                operation: "start payload", subject: spec.locations.file ?? "payload spec \(spec.name)",
                path: spec.locations.file)
        }
        if options.reclaimStale { PayloadStateDirectory.reclaimStale() }

        var lease: EphemeralUserLease?
        var storage: PayloadStorage?
        var job: JobObject?
        var janitor: PayloadJanitor?
        do {
            let credentials: SpawnOptions.Credentials?
            switch plan.identity {
            case .inherit: credentials = nil
            case .fixed(let fixed): credentials = fixed
            case .ephemeral(let range, let gid, let groups):
                let allocated = try EphemeralUserLease.allocate(in: range, job: plan.name)
                lease = allocated
                credentials = SpawnOptions.Credentials(uid: allocated.uid, gid: gid, supplementaryGroups: groups)
            }
            let made = try PayloadStorage.create(plan)
            storage = made
            let created = try JobObject.create(
                name: plan.name, parent: options.cgroupParent, limits: plan.limits, killOnClose: true,
                trackDescendants: options.trackDescendants)
            job = created
            let work = made.janitorWork
            let keeper = try PayloadJanitor.start(
                cgroupPath: created.path.string, unmount: work.unmount,
                remove: work.remove + (lease.map { [$0.path] } ?? []),
                keepFD: lease?.lockFD)
            janitor = keeper
            try made.update { record in
                record.janitor = keeper.identity
                record.cgroup = created.path.string
                record.cgroupID = (try? Syscall.fileStatus(created.path.string).get()).map { UInt64($0.st_ino) }
                record.uidLock = lease?.path
            }
            if plan.mode == .hostVisible { try made.mountHostVisible() }

            var spawn = SpawnOptions(plan.executable, arguments: plan.arguments)
            spawn.environment = .custom(plan.environment)
            spawn.workingDirectory = FilePath(plan.workingDirectory)
            spawn.standardInput = options.standardInput
            spawn.standardOutput = options.standardOutput
            spawn.standardError = options.standardError
            spawn.extraDescriptors = options.extraDescriptors
            spawn.processGroup = options.processGroup
            spawn.blockedSignals = options.blockedSignals
            spawn.credentials = credentials
            spawn.capabilities = plan.capabilities
            spawn.noNewPrivileges = plan.noNewPrivileges
            spawn.seccompFilter = plan.seccompFilter
            if plan.mode == .privateNamespace {
                spawn.mountNamespace = SpawnOptions.MountNamespace(propagation: .slave, mounts: plan.mounts)
            }
            let events = options.followEvents ? created.events : nil
            let process = try created.spawn(spawn)
            // Init is our unreaped child, so its /proc entry is its own even
            // if it has exited (then there is no namespace left to name).
            var namespace: String?
            var namespaceFD: CInt?
            if plan.mode == .privateNamespace, case .success(let fd) = Syscall.open("/proc/\(process.pid)/ns/mnt", O_RDONLY) {
                namespaceFD = fd
                namespace = try? Syscall.readlink("/proc/self/fd/\(fd)").get()
            }
            return Payload(
                spec: spec, plan: plan, job: created, initProcess: process, credentials: credentials,
                lease: lease, storage: made, janitor: keeper, grace: options.grace ?? plan.grace,
                mountNamespace: namespace, namespaceFD: namespaceFD, events: events)
        } catch {
            // Undo in reverse; the first error is the one to report.
            _ = storage?.unmount()
            if let job { try? await job.close() }
            _ = storage?.remove()
            lease?.release()
            _ = janitor?.dismiss()
            PayloadStateDirectory.removeIfEmpty()
            throw error
        }
    }

    /// Starts `spec` and returns how it ended.
    public static func run(_ spec: PayloadSpec, options: RunOptions = RunOptions()) async throws(JobObjectError) -> PayloadOutcome {
        try await start(spec, options: options).wait()
    }

    /// Waits until init has exited and the end-of-life sequence has run.
    public func wait() async -> PayloadOutcome {
        await lifecycle.value
    }

    /// Kills every process of the job now (`cgroup.kill`); the end-of-life
    /// sequence then runs as when init exits. Returns how it ended.
    public func terminate() async -> PayloadOutcome {
        if initProcess.exitStatus == nil { _ = try? job.signal(.kill) }
        return await wait()
    }

    /// Releases the storage of payloads whose owner and janitor both died
    /// (see `PayloadStateDirectory`); `start` does this first by default.
    /// Returns the names reclaimed.
    @discardableResult
    public static func reclaimStale() -> [String] {
        PayloadStateDirectory.reclaimStale()
    }

    deinit {
        namespaceFD.withLock { fd in if let open = fd { Syscall.close(open) } }
    }

    // MARK: The end

    private func endOfLife() async -> PayloadOutcome {
        let status = await initProcess.wait()
        var steps: [PayloadCleanupStep] = []

        steps.append(await endProcesses())
        let accounting = try? job.accounting()

        switch mode {
        case .hostVisible: steps += storage.unmount()
        case .privateNamespace: steps.append(namespaceReleased())
        }
        steps += storage.remove()
        do {
            try await job.close()
            steps.append(PayloadCleanupStep(.removeCgroup, job.path.string))
        } catch {
            steps.append(PayloadCleanupStep(.removeCgroup, job.path.string, error: error))
        }
        if let lease {
            lease.release()
            steps.append(PayloadCleanupStep(.releaseUser, "uid \(lease.uid)"))
        }
        steps.append(janitor.dismiss())
        PayloadStateDirectory.removeIfEmpty()
        return PayloadOutcome(
            name: spec.name, jobPath: job.path, initPID: initProcess.pid, initStatus: status,
            accounting: accounting, credentials: credentials, ephemeralUID: lease?.uid,
            sandboxMountPoint: sandboxMountPoint, cleanup: steps)
    }

    /// SIGTERM to every process init left, then `cgroup.kill` once the grace
    /// period is over; returns once the job is empty.
    private func endProcesses() async -> PayloadCleanupStep {
        let target = "job \(job.name)"
        do {
            let termination = GracefulTermination(signal: .terminate, grace: grace)
            switch try await job.terminate(termination, exitCode: initProcess.exitStatus?.shellStatus ?? 1) {
            case .wasEmpty:
                return PayloadCleanupStep(.endProcesses, target, detail: "init left nothing")
            case .leftWithinGrace(let signalled):
                return PayloadCleanupStep(.endProcesses, target, detail: "\(signalled) process(es) exited on SIGTERM")
            case .killedAfterGrace(let signalled):
                return PayloadCleanupStep(
                    .endProcesses, target, detail: "\(signalled) process(es) got SIGTERM; killed after the grace period of \(grace)")
            }
        } catch {
            return PayloadCleanupStep(.endProcesses, target, error: error)
        }
    }

    /// Private mode: the kernel unmounts everything in the job's namespace
    /// when its last process exits; this checks that no process holds it.
    private func namespaceReleased() -> PayloadCleanupStep {
        // Let go of the namespace once the scan is done; the kernel frees it
        // (and unmounts all in it) as soon as nothing else refers to it.
        defer {
            namespaceFD.withLock { fd in
                if let open = fd { Syscall.close(open) }
                fd = nil
            }
        }
        guard let mountNamespace, namespaceFD.withLock({ $0 }) != nil else {
            return PayloadCleanupStep(
                .releaseMountNamespace, "private namespace", detail: "init exited before its namespace could be named")
        }
        if case .success(let names) = Syscall.listDirectory("/proc") {
            for name in names where name.first?.isNumber == true {
                if case .success(let link) = Syscall.readlink("/proc/\(name)/ns/mnt"), link == mountNamespace {
                    return PayloadCleanupStep(
                        .releaseMountNamespace, mountNamespace,
                        error: JobObjectError(
                            .systemCallFailed, "process \(name) still holds the job's mount namespace, so its mounts remain until it exits",
                            operation: "release payload storage"))
                }
            }
        }
        return PayloadCleanupStep(.releaseMountNamespace, mountNamespace, detail: "gone with the job's last process")
    }
}
