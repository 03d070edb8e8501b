import ArgumentParser
import JobObjects
import SystemPackage

/// `--cgroup-parent` and `--cgroup-driver`, shared by every command that finds jobs.
struct CgroupParentOption: ParsableArguments {
    @Option(
        name: .customLong("cgroup-parent"),
        help: ArgumentHelp(
            "The job parent cgroup (default: $JOBOBJECTS_CGROUP_PARENT, else 'jobobjects' under jobsup's own cgroup).", valueName: "path"))
    var value: String?

    @Option(
        name: .customLong("cgroup-driver"),
        help: ArgumentHelp(
            "cgroupfs or systemd (default: $JOBOBJECTS_CGROUP_DRIVER, else systemd where it manages the machine and has not delegated jobsup's cgroup; see jobsup info).",
            valueName: "driver"))
    var driver: CgroupDriver?

    /// The option as the library takes it.
    var path: FilePath? { value.map { FilePath($0) } }
}

extension CgroupDriver: ExpressibleByArgument {}
