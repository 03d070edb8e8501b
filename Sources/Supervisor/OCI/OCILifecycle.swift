import Glibc
import JobObjects
import JobObjectsPayload
import SystemPackage

/// `start`, `kill`, `delete`, `pause` and `resume`: each reads the
/// container's record and acts on its init or its job.
struct OCILifecycle {
    let root: String
    let record: OCIContainerRecord

    init(root: String, id: String) throws(OCIRuntimeError) {
        self.root = root
        record = try OCIContainerRecord.read(root: root, id: id)
    }

    /// Opens the gate: init goes on to execve. Only from `created`.
    func start() throws(OCIRuntimeError) {
        let status = record.status(root: root)
        guard status == "created" else { throw OCIRuntimeError("cannot start container \(record.id): it is \(status), not created") }
        let fifo = OCIContainerRecord.fifo(root: root, id: record.id)
        // Non-blocking: with no reader (init died since) this fails at once.
        let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw OCIRuntimeError("cannot start container \(record.id): its init is not waiting") }
        defer { close(fd) }
        var byte: UInt8 = 1
        guard Glibc.write(fd, &byte, 1) == 1 else {
            throw OCIRuntimeError("cannot start container \(record.id): \(String(cString: strerror(errno)))")
        }
        unlink(fifo)
    }

    /// `kill ID SIG` signals init; `--all` every member of the job. SIGKILL
    /// to all of a container whose init has exited (the shim's end of a
    /// host-pid container) ends it as a payload ends: SIGTERM to what is
    /// left, the payload's grace, then `cgroup.kill`.
    func kill(_ signal: Signal, all: Bool) throws(OCIRuntimeError) {
        if !all {
            guard record.initProcess.isAlive else { throw OCIRuntimeError("container \(record.id) is not running") }
            guard let pidfd = try? Syscall.pidfdOpen(record.initProcess.pid).get() else {
                throw OCIRuntimeError("container \(record.id) is not running")
            }
            defer { Glibc.close(pidfd) }
            // The pidfd names the process whose start time was just checked.
            guard record.initProcess.isAlive, (try? Syscall.pidfdSendSignal(pidfd, signal.rawValue).get()) != nil else {
                throw OCIRuntimeError("container \(record.id) is not running")
            }
            return
        }
        let job = try openJob()
        do {
            if signal == .kill && !record.initProcess.isAlive {
                try endAfterInit(job)
            } else if signal == .kill {
                try OCIRuntime.wait { try await job.terminate() }
            } else {
                _ = try job.signal(signal)
            }
        } catch {
            throw OCIRuntimeError("kill --all \(record.id): \(error)")
        }
    }

    /// Removes everything create made: the job (killed first when init is
    /// still there: a `created` container always, any other only with
    /// `--force`), the cgroup levels and sandbox directory it made, the
    /// state.
    func delete(force: Bool) throws(OCIRuntimeError) {
        let status = record.status(root: root)
        if status != "stopped" && status != "created" && !force {
            throw OCIRuntimeError("cannot delete container \(record.id) that is not stopped: it is \(status) (use --force)")
        }
        // podman has no `kill --all` after init's exit: its cleanup deletes.
        if status == "stopped", let job = try? openJob() {
            try? endAfterInit(job)
        }
        guard AbandonedJob.killAndRemove(path: record.cgroup, cgroupID: record.cgroupID) else {
            throw OCIRuntimeError("the job of container \(record.id) (\(record.cgroup)) did not empty; try again")
        }
        for level in record.madeLevels.reversed() { _ = rmdir(level) }
        OCICgroupPlacement.removeEmptyMadeLevels(above: record.cgroup)
        if let sandbox = record.madeSandbox { _ = rmdir(sandbox) }
        OCIUndo.removeStateDirectory(OCIContainerRecord.directory(root: root, id: record.id))
    }

    /// A payload's end, once its init has exited: SIGTERM to what is left,
    /// the payload's grace, then `cgroup.kill`.
    private func endAfterInit(_ job: JobObject) throws {
        let termination = GracefulTermination(signal: .terminate, grace: .seconds(record.graceSeconds))
        _ = try OCIRuntime.wait { try await job.terminate(termination) }
    }

    func pause() throws(OCIRuntimeError) {
        let job = try openJob()
        do {
            try OCIRuntime.wait { try await job.freeze() }
        } catch {
            throw OCIRuntimeError("pause \(record.id): \(error)")
        }
    }

    func resume() throws(OCIRuntimeError) {
        let job = try openJob()
        do {
            try OCIRuntime.wait { try await job.thaw() }
        } catch {
            throw OCIRuntimeError("resume \(record.id): \(error)")
        }
    }

    /// `update --resources FILE|-`: a `LinuxResources` object, from a file
    /// or standard input, set on the live job.
    func update(resources source: String) throws(OCIRuntimeError) {
        let limits: JobLimits
        do {
            limits = try OCIConfig.loadResources(file: FilePath(source))
        } catch {
            throw OCIRuntimeError(error.message)
        }
        guard record.initProcess.isAlive else { throw OCIRuntimeError("cannot update container \(record.id): it is stopped") }
        let job = try openJob()
        do {
            try job.setLimits(limits)
        } catch {
            throw OCIRuntimeError("update \(record.id): \(error.message)")
        }
    }

    /// The pids in the job.
    func processIDs() throws(OCIRuntimeError) -> [pid_t] {
        let job = try openJob()
        do {
            return try job.processIDs()
        } catch {
            throw OCIRuntimeError(error.message)
        }
    }

    func openJob() throws(OCIRuntimeError) -> JobObject {
        try Self.openJob(id: record.id, cgroup: record.cgroup, cgroupID: record.cgroupID)
    }

    /// The job at `cgroup`, if it is still the one whose inode is `cgroupID`.
    static func openJob(id: String, cgroup: String, cgroupID: UInt64) throws(OCIRuntimeError) -> JobObject {
        guard OCICgroupPlacement.inode(cgroup) == cgroupID, let slash = cgroup.lastIndex(of: "/") else {
            throw OCIRuntimeError("the job of container \(id) is gone")
        }
        do {
            return try JobObject.open(
                name: String(cgroup[cgroup.index(after: slash)...]), parent: FilePath(String(cgroup[..<slash])), driver: .cgroupfs)
        } catch {
            throw OCIRuntimeError(error.message)
        }
    }
}
