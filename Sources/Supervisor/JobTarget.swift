import ArgumentParser
import JobObjects

/// The named job a management command acts on, and where to find it.
struct JobTarget: ParsableArguments {
    @Argument(help: ArgumentHelp("The job's name (as given to jobsup run --name).", valueName: "name"))
    var name: String

    @OptionGroup var cgroupParent: CgroupParentOption

    /// A name no job can have is a usage error (2), as it is for `run`.
    func validate() throws {
        do { _ = try JobName(name) } catch { throw ValidationError(error.message) }
    }

    /// Opens the job without taking ownership: closing this handle leaves it running.
    /// A job that cannot be opened ends jobsup with status 1 (2 for bad input).
    func open() -> JobObject {
        do {
            return try JobObject.open(name: name, parent: cgroupParent.path, driver: cgroupParent.driver)
        } catch {
            Diagnostics.fail(error, status: SupervisorExit.managementStatus(for: error))
        }
    }
}

/// Runs a management command's body; a library error ends jobsup with status 1 (2 for bad input).
func management(_ body: () async throws(JobObjectError) -> Void) async {
    do {
        try await body()
    } catch {
        Diagnostics.fail(error, status: SupervisorExit.managementStatus(for: error))
    }
}
