import ArgumentParser
import JobObjects
import SystemPackage

/// `--cgroup-parent`, shared by every command that finds jobs.
struct CgroupParentOption: ParsableArguments {
    @Option(
        name: .customLong("cgroup-parent"),
        help: ArgumentHelp(
            "The job parent cgroup (default: $JOBOBJECTS_CGROUP_PARENT, else 'jobobjects' under jobsup's own cgroup).", valueName: "path"))
    var value: String?

    /// The option as the library takes it.
    var path: FilePath? { value.map { FilePath($0) } }
}
