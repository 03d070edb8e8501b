import JobObjects
import Glibc
import Synchronization
import SystemPackage

/// One payload's storage: its directory /run/jobobjects/NAME with the
/// record and the mount points the runner creates, and, in host mode, the
/// mounts made in the owner's namespace.
///
/// The directory appears complete or not at all: it is built under a
/// hidden name with its record and then renamed into place, so a directory
/// that has a name always has a record saying whose it is.
final class PayloadStorage: Sendable {
    let root: String
    let mode: PayloadSpec.StorageMode
    /// The mounts host mode makes here (private mode: the child makes them).
    let hostMounts: [SpawnOptions.BindMount]
    let createdPaths: [PayloadPlan.CreatedPath]
    var recordPath: String { root + "/" + PayloadPaths.recordName }

    private struct State {
        var record: PayloadRecord
        var mounted: [String] = []
        var made: [PayloadPlan.CreatedPath] = []
    }
    private let state: Mutex<State>

    private init(
        root: String, mode: PayloadSpec.StorageMode, hostMounts: [SpawnOptions.BindMount],
        createdPaths: [PayloadPlan.CreatedPath], record: PayloadRecord
    ) {
        self.root = root
        self.mode = mode
        self.hostMounts = hostMounts
        self.createdPaths = createdPaths
        state = Mutex(State(record: record))
    }

    /// Creates the directory, its record and the mount points of `plan`.
    /// Nothing is left behind when this throws.
    static func create(_ plan: PayloadPlan) throws(JobObjectError) -> PayloadStorage {
        let hostMounts = plan.mode == .hostVisible ? plan.mounts : []
        var record = PayloadRecord(owner: .current, mode: plan.mode)
        record.mounts = hostMounts.map(\.target.string)
        record.created = plan.createdPaths
        let storage = PayloadStorage(
            root: plan.storageRoot, mode: plan.mode, hostMounts: hostMounts,
            createdPaths: plan.createdPaths, record: record)
        try storage.publish(record)
        storage.state.withLock { $0.made = [plan.createdPaths[0]] }
        for path in plan.createdPaths.dropFirst() {
            let result =
                path.isDirectory
                ? Syscall.mkdir(path.path, 0o755).map { _ in () }
                : Syscall.open(path.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o644).map { Syscall.close($0) }
            if case .failure(let errno) = result {
                _ = storage.remove()
                throw JobObjectError(
                    .systemCallFailed, "cannot create the mount point \(path.path)", operation: "prepare payload storage",
                    path: path.path, errno: errno)
            }
            storage.state.withLock { $0.made.append(path) }
        }
        return storage
    }

    /// Builds the directory with its record under a hidden name and renames
    /// it into place. A directory of that name whose owner and janitor are
    /// dead is reclaimed first; a live one is an error.
    private func publish(_ record: PayloadRecord) throws(JobObjectError) {
        var attempts = 0
        while true {
            attempts += 1
            try PayloadStateDirectory.ensure(PayloadPaths.stateRoot, mode: 0o755)
            let me = ProcessIdentity.current
            let temporary = PayloadPaths.stateRoot + "/.new-\(me.pid)-\(me.startTime)-\(UInt32.random(in: 0...UInt32.max))"
            switch Syscall.mkdir(temporary, 0o755) {
            case .success: break
            case .failure(.noSuchFileOrDirectory) where attempts < 5: continue  // the root was just removed
            case .failure(let errno):
                throw JobObjectError.system(errno, operation: "prepare payload storage", path: temporary, what: "create")
            }
            let recordFile = temporary + "/" + PayloadPaths.recordName
            let written = Syscall.open(recordFile, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644).flatMap { fd in
                defer { Syscall.close(fd) }
                return FileContents.write(fd: fd, record.serialized)
            }
            if case .failure(let errno) = written {
                _ = Syscall.unlink(recordFile)
                _ = Syscall.rmdir(temporary)
                throw JobObjectError.system(errno, operation: "prepare payload storage", path: recordFile, what: "write")
            }
            switch Syscall.rename(temporary, root) {
            case .success: return
            case .failure(let errno):
                _ = Syscall.unlink(recordFile)
                _ = Syscall.rmdir(temporary)
                guard errno == .fileExists || errno == .directoryNotEmpty else {
                    throw JobObjectError.system(errno, operation: "prepare payload storage", path: root, what: "create")
                }
                if attempts < 3, case .success(let text) = FileContents.read(recordPath),
                    let existing = PayloadRecord(parsing: text), !existing.owner.isAlive, existing.janitor?.isAlive != true
                {
                    PayloadStateDirectory.reclaim(root: root, existing)
                    continue
                }
                throw JobObjectError(
                    .jobExists,
                    "a payload named \"\(root.split(separator: "/").last.map(String.init) ?? root)\" is already running (its storage \(root) exists); choose another name",
                    operation: "prepare payload storage", path: root, errno: errno)
            }
        }
    }

    /// Rewrites the record (a new file renamed over the old one).
    func update(_ change: (inout PayloadRecord) -> Void) throws(JobObjectError) {
        let text = state.withLock { state -> String in
            change(&state.record)
            return state.record.serialized
        }
        let temporary = root + "/.payload.new"
        let written = Syscall.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644).flatMap { fd in
            defer { Syscall.close(fd) }
            return FileContents.write(fd: fd, text)
        }.flatMap { Syscall.rename(temporary, recordPath).map { _ in () } }
        if case .failure(let errno) = written {
            _ = Syscall.unlink(temporary)
            throw JobObjectError.system(errno, operation: "prepare payload storage", path: recordPath, what: "write the record")
        }
    }

    /// Host mode: makes the mounts in this process's namespace, in order.
    func mountHostVisible() throws(JobObjectError) {
        for mount in hostMounts {
            switch Syscall.mount(mount) {
            case .success:
                state.withLock { $0.mounted.append(mount.target.string) }
            case .failure(let failure):
                let what = failure.readOnlyStep ? "make the mount at \(mount.target) read-only" : "bind \(mount.source) at \(mount.target)"
                if failure.readOnlyStep { state.withLock { $0.mounted.append(mount.target.string) } }
                throw JobObjectError(
                    .systemCallFailed, "cannot \(what) (mounting needs CAP_SYS_ADMIN)",
                    operation: "mount payload storage", path: mount.target.string, errno: failure.errno)
            }
        }
    }

    /// Host mode: unmounts what was mounted, last first. A busy mount is
    /// detached (MNT_DETACH) and the step says so.
    func unmount() -> [PayloadCleanupStep] {
        let mounted = state.withLock { state -> [String] in
            defer { state.mounted = [] }
            return state.mounted
        }
        return mounted.reversed().map { target in
            switch Syscall.umount(target, detach: false) {
            case .success: return PayloadCleanupStep(.unmount, target)
            case .failure(.resourceBusy):
                if case .failure(let errno) = Syscall.umount(target, detach: true) {
                    return PayloadCleanupStep(
                        .unmount, target, error: .system(errno, operation: "unmount payload storage", path: target, what: "detach"))
                }
                return PayloadCleanupStep(.unmount, target, detail: "busy: detached lazily")
            case .failure(let errno):
                return PayloadCleanupStep(
                    .unmount, target, error: .system(errno, operation: "unmount payload storage", path: target, what: "unmount"))
            }
        }
    }

    /// Removes the record and every path created, last first.
    func remove() -> [PayloadCleanupStep] {
        let made = state.withLock { state -> [PayloadPlan.CreatedPath] in
            defer { state.made = [] }
            return state.made
        }
        guard !made.isEmpty else { return [] }
        var steps: [PayloadCleanupStep] = []
        for path in [PayloadPlan.CreatedPath(path: recordPath, isDirectory: false)] + made.reversed() {
            let result = path.isDirectory ? Syscall.rmdir(path.path) : Syscall.unlink(path.path)
            switch result {
            case .success, .failure(.noSuchFileOrDirectory): steps.append(PayloadCleanupStep(.remove, path.path))
            case .failure(let errno):
                steps.append(
                    PayloadCleanupStep(
                        .remove, path.path, error: .system(errno, operation: "remove payload storage", path: path.path, what: "remove")))
            }
        }
        return steps
    }

    /// What the janitor releases if the owner dies: the host mounts (it
    /// unmounts them last first), then the record and the created paths.
    var janitorWork: (unmount: [String], remove: [String]) {
        (hostMounts.map(\.target.string), [recordPath, root + "/.payload.new"] + createdPaths.reversed().map(\.path))
    }
}
