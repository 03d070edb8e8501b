import ArgumentParser
import JobObjects

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show where jobs would be created and what this host offers them.",
        discussion:
            "Prints the cgroup driver in use and why (cgroupfs, or systemd: a delegated scope systemd makes for the first job), the cgroup2 mount, this process's cgroup, the job parent, the controllers jobs can use, how firmly members are held in their job (cgroup namespace, nsdelegate), and the kernel features found (cgroup.kill, clone3, CLONE_INTO_CGROUP, waitid(P_PIDFD))."
    )

    @OptionGroup var cgroupParent: CgroupParentOption

    func run() throws {
        do {
            print(try JobParent.report(cgroupParent.path, driver: cgroupParent.driver))
        } catch {
            Diagnostics.fail(error)
        }
    }
}
