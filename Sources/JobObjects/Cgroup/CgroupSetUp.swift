import Glibc
import Synchronization

/// What this process changed in the cgroup tree to make room for its jobs:
/// parents it created, controllers it enabled in `cgroup.subtree_control`,
/// the `supervisor` leaf it moved into. Recorded as it happens, so that
/// `JobParent.undoSetUp()` can put the tree back as it was — and so that a
/// refused or failed run leaves nothing behind either.
enum CgroupSetUp {
    private struct Record {
        var parents: [String] = []
        var controllers: [(directory: String, controller: String)] = []
        var leaf: (path: String, home: String, made: Bool)?
    }

    private static let record = Mutex(Record())

    static func madeParent(_ path: String) {
        record.withLock { $0.parents.append(path) }
    }

    static func isMadeParent(_ path: String) -> Bool {
        record.withLock { $0.parents.contains(path) }
    }

    static func enabled(_ controller: String, in directory: String) {
        record.withLock { $0.controllers.append((directory, controller)) }
    }

    static func enteredLeaf(_ path: String, from home: String, made: Bool) {
        record.withLock { record in
            if record.leaf == nil { record.leaf = (path, home, made) }
        }
    }

    /// Undoes, newest first, what is no longer used: each step that the
    /// kernel refuses (a parent with another process's job in it, a
    /// controller a sibling still uses) is left as it is, and so are the
    /// steps that depend on it.
    static func undo() {
        let done = record.withLock { record -> Record in
            defer { record = Record() }
            return record
        }
        for parent in done.parents.reversed() { _ = Syscall.rmdir(parent) }
        // A controller is disabled only where no cgroup but the leaf is
        // left below: the kernel refuses it (EBUSY) while a child enables
        // it further down, but lets a child job that merely uses it (its
        // memory.max) lose it without a word.
        for (directory, controller) in done.controllers.reversed() where noCgroup(below: directory, but: done.leaf?.path) {
            _ = FileContents.write(at: AT_FDCWD, directory + "/cgroup.subtree_control", "-" + controller)
        }
        guard let leaf = done.leaf else { return }
        // Home again only where processes may live: not while a controller
        // is still enabled for its children.
        guard case .success = FileContents.write(at: AT_FDCWD, leaf.home + "/cgroup.procs", "0") else { return }
        if leaf.made { _ = Syscall.rmdir(leaf.path) }
    }

    /// Whether `directory` has no child cgroup other than `allowed`.
    private static func noCgroup(below directory: String, but allowed: String?) -> Bool {
        let children = (try? Syscall.listDirectory(directory, directoriesOnly: true).get()) ?? []
        return children.allSatisfy { CgroupPath.join(directory, $0) == allowed }
    }
}

extension JobParent {
    /// Puts back what this process changed in the cgroup tree for its jobs
    /// — job parents it created, controllers it enabled, the `supervisor`
    /// leaf it moved into (it moves back to its own cgroup first) — where
    /// nothing else uses them any more. Call it once the process's jobs are
    /// closed, before it exits; jobsup does, whether its run ended, failed
    /// or was refused.
    public static func undoSetUp() {
        CgroupSetUp.undo()
    }
}
