extension JobObject {
    /// Whether the job is frozen now (`cgroup.events` frozen 1).
    public var isFrozen: Bool {
        get throws(JobObjectError) { try cgroupEvents.current().frozen }
    }
}
