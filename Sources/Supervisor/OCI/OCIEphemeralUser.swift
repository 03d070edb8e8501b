import Glibc
import JobObjects
import JobObjectsPayload

/// `jobobjects.io/ephemeral-user-group: GROUP` (a name or a number): the
/// container runs as a uid of its own, allocated for it from the range a
/// payload spec's `ephemeralUser` uses (a uid with no passwd entry, no
/// process and no other job), with GROUP as its group — HostProcess's "run
/// as a local group". Every process of the container, init and each exec,
/// runs as that user whatever `process.user` says. The uid is free again
/// once the container's last process is gone.
enum OCIEphemeralUser {
    static let annotation = "jobobjects.io/ephemeral-user-group"

    /// The group the annotation names; nil without it.
    static func group(_ value: String?) throws(OCIRuntimeError) -> gid_t? {
        guard let value else { return nil }
        if let gid = gid_t(value) {
            guard UserDatabase.groupExists(id: gid) else {
                throw OCIRuntimeError(
                    "annotation \(annotation): no group has the number \(gid); give a group that exists, by name or number")
            }
            return gid
        }
        guard !value.isEmpty, let gid = UserDatabase.group(named: value) else {
            throw OCIRuntimeError(
                "annotation \(annotation): no group named \"\(value.prefix(64))\"; give a group that exists, by name or number")
        }
        return gid
    }

    /// What every process of the container runs as: `uid` in `gid` alone.
    static func credentials(uid: uid_t, gid: gid_t) -> SpawnOptions.Credentials {
        SpawnOptions.Credentials(uid: uid, gid: gid, supplementaryGroups: [gid])
    }

    /// A uid for container `id`, held until the lease is released: by then
    /// init runs as it, which keeps it taken.
    static func allocate(id: String) throws(OCIRuntimeError) -> EphemeralUserLease {
        do {
            return try EphemeralUserLease.allocate(in: PayloadSpec.EphemeralUser.defaultRange, job: "oci-" + id)
        } catch {
            throw OCIRuntimeError("annotation \(annotation): \(error.message)")
        }
    }
}
