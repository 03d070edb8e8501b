import Glibc
import JobObjects
import Synchronization

/// Where jobs and floors live, and the shared knobs of the workloads.
public enum Workloads {
    /// The payload of the spawn benchmarks.
    public static let trueProgram = "/bin/true"
    /// What teardown benchmarks fill a job with.
    public static let sleepProgram = "/bin/sleep"

    /// The job parent the library resolves (the floors create their cgroups in it too).
    public static func jobParent() throws -> String {
        try JobParent.resolve().path.string
    }

    /// A name unique within this run, for jobs the benchmarks create.
    public static func uniqueJobName(_ prefix: String) -> String {
        "\(prefix)-\(getpid())-\(counter.wrappingAdd(1, ordering: .relaxed).newValue)"
    }

    private static let counter = Atomic<Int>(0)
}
