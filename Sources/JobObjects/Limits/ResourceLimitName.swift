import Glibc

/// The setrlimit resources by their ulimit/prlimit names: jobsup's
/// `--rlimit` reads them, the library's messages say them.
package enum ResourceLimitName: String, CaseIterable {
    case `as`, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack

    package enum Unit { case bytes, seconds, count }

    package static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    package var unit: Unit {
        switch self {
        case .as, .core, .data, .fsize, .memlock, .msgqueue, .rss, .stack: .bytes
        case .cpu: .seconds
        default: .count
        }
    }

    package var resource: Int32 {
        let value: __rlimit_resource
        switch self {
        case .as: value = RLIMIT_AS
        case .core: value = RLIMIT_CORE
        case .cpu: value = RLIMIT_CPU
        case .data: value = RLIMIT_DATA
        case .fsize: value = RLIMIT_FSIZE
        case .locks: value = __RLIMIT_LOCKS
        case .memlock: value = __RLIMIT_MEMLOCK
        case .msgqueue: value = __RLIMIT_MSGQUEUE
        case .nice: value = __RLIMIT_NICE
        case .nofile: value = RLIMIT_NOFILE
        case .nproc: value = __RLIMIT_NPROC
        case .rss: value = __RLIMIT_RSS
        case .rtprio: value = __RLIMIT_RTPRIO
        case .rttime: value = __RLIMIT_RTTIME
        case .sigpending: value = __RLIMIT_SIGPENDING
        case .stack: value = RLIMIT_STACK
        }
        return Int32(value.rawValue)
    }

    package init?(resource: Int32) {
        guard let found = Self.allCases.first(where: { $0.resource == resource }) else { return nil }
        self = found
    }
}
