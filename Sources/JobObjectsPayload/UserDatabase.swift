import JobObjects
import Glibc

/// Users and groups from the system's databases (NSS: /etc/passwd,
/// /etc/group, and whatever nsswitch.conf adds), resolved in the parent so
/// that the spawned child only makes syscalls.
package enum UserDatabase {
    struct User: Sendable, Hashable {
        var name: String
        var uid: uid_t
        var gid: gid_t
        var home: String
    }

    /// getpwnam_r.
    static func user(named name: String) -> User? {
        lookupUser { getpwnam_r(name, &$0, $1, $2, &$3) }
    }

    /// getpwuid_r.
    static func user(id: uid_t) -> User? {
        lookupUser { getpwuid_r(id, &$0, $1, $2, &$3) }
    }

    /// getgrnam_r: the group's number.
    package static func group(named name: String) -> gid_t? {
        lookupGroup { getgrnam_r(name, &$0, $1, $2, &$3) }
    }

    /// getgrgid_r: whether the group exists.
    package static func groupExists(id: gid_t) -> Bool {
        lookupGroup { getgrgid_r(id, &$0, $1, $2, &$3) } != nil
    }

    /// getgrouplist: the groups `user` belongs to, `primary` first.
    static func groups(of user: String, primary: gid_t) -> [gid_t] {
        var count: CInt = 32
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let wanted = count
            if getgrouplist(user, primary, &groups, &count) >= 0 { return Array(groups.prefix(Int(count))) }
            if count <= wanted { count = wanted * 2 }
            if count > 65536 { return [primary] }
        }
    }

    private static func lookupUser(
        _ call: (inout passwd, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<passwd>?) -> CInt
    ) -> User? {
        var size = 1024
        while size <= 1 << 20 {
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let rc = call(&entry, buffer, size, &result)
            if rc == ERANGE {
                size *= 4
                continue
            }
            guard rc == 0, result != nil else { return nil }
            return User(
                name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid,
                home: entry.pw_dir.map { String(cString: $0) } ?? "/")
        }
        return nil
    }

    private static func lookupGroup(
        _ call: (inout Glibc.group, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<Glibc.group>?) -> CInt
    ) -> gid_t? {
        var size = 1024
        while size <= 1 << 20 {
            var entry = Glibc.group()
            var result: UnsafeMutablePointer<Glibc.group>?
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let rc = call(&entry, buffer, size, &result)
            if rc == ERANGE {
                size *= 4
                continue
            }
            guard rc == 0, result != nil else { return nil }
            return entry.gr_gid
        }
        return nil
    }
}
