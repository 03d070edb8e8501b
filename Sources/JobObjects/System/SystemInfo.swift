import Glibc

/// Facts about the machine the library needs.
public enum SystemInfo {
    /// CPUs online now (sysconf _SC_NPROCESSORS_ONLN).
    public static var onlineCPUCount: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
