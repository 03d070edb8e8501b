import SystemPackage

/// The one error type of JobObjects.
///
/// `code` says what went wrong and is extensible (new codes can be added
/// without breaking a `switch` that has a `default`). `errno` is the kernel's
/// answer when there was one; `operation` and `path` say where it happened;
/// `description` says what to do about it.
public struct JobObjectError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong, as a value to switch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case cgroup2NotMounted, parentNotWritable, parentNotDelegated, invalidJobName
            case jobExists, jobNotFound, controllerUnavailable, invalidArgument
            case executableNotFound, spawnFailed, processExited, jobClosed, systemCallFailed
            case watchdogUnavailable, outputLimitExceeded
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// No cgroup2 file system is mounted.
        public static let cgroup2NotMounted = Code(.cgroup2NotMounted)
        /// The job parent cannot be written by this process (read-only mount, permissions).
        public static let parentNotWritable = Code(.parentNotWritable)
        /// The job parent exists but is not delegated to this process.
        public static let parentNotDelegated = Code(.parentNotDelegated)
        /// A job name is empty, `.`, `..`, holds `/` or a newline, or is too long.
        public static let invalidJobName = Code(.invalidJobName)
        /// A job of that name already exists under the parent.
        public static let jobExists = Code(.jobExists)
        /// No job of that name exists under the parent.
        public static let jobNotFound = Code(.jobNotFound)
        /// A controller a limit needs is not available to the job parent.
        public static let controllerUnavailable = Code(.controllerUnavailable)
        /// A value given by the caller is out of range or malformed.
        public static let invalidArgument = Code(.invalidArgument)
        /// The executable was not found (PATH lookup or path).
        public static let executableNotFound = Code(.executableNotFound)
        /// The child could not be created or failed before `execve` completed.
        public static let spawnFailed = Code(.spawnFailed)
        /// The process exited before the operation could complete.
        public static let processExited = Code(.processExited)
        /// The job handle was already closed or detached.
        public static let jobClosed = Code(.jobClosed)
        /// A system call failed in a way no more specific code describes.
        public static let systemCallFailed = Code(.systemCallFailed)
        /// The owner-death watchdog could not be started or reached.
        public static let watchdogUnavailable = Code(.watchdogUnavailable)
        /// A process wrote more than the caller would collect (`JobObject.run`).
        public static let outputLimitExceeded = Code(.outputLimitExceeded)

        public var description: String { "\(value)" }
    }

    /// What went wrong.
    public let code: Code
    /// The kernel's error, when a system call failed.
    public let errno: Errno?
    /// What was being done, e.g. "create job", "spawn".
    public let operation: String
    /// The file or cgroup involved, if any.
    public let path: String?
    /// A sentence for a person: what is wrong and how to fix it.
    public let message: String

    /// An error with its code, a message that says how to fix it, and where it happened.
    public init(_ code: Code, _ message: String, operation: String, path: String? = nil, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String {
        var text = "\(operation): \(message)"
        if let errno { text += " (\(errno))" }
        return text
    }
}

extension JobObjectError {
    /// A failed system call on `path`, with the message chosen by errno where
    /// a common cause has a common fix.
    package static func system(_ errno: Errno, operation: String, path: String? = nil, what: String) -> JobObjectError {
        let place = path.map { " \($0)" } ?? ""
        switch errno {
        case .readOnlyFileSystem:
            return JobObjectError(
                .parentNotWritable,
                "cannot \(what)\(place): the cgroup file system is mounted read-only; run where cgroup2 is writable (a container needs a writable /sys/fs/cgroup, e.g. --cgroupns=private with a delegated cgroup)",
                operation: operation, path: path, errno: errno)
        case .permissionDenied, .notPermitted:
            return JobObjectError(
                .parentNotDelegated,
                "cannot \(what)\(place): permission denied; run as root or delegate the cgroup to this user (systemd: Delegate=yes, or chown the directory and its cgroup.procs, cgroup.subtree_control)",
                operation: operation, path: path, errno: errno)
        default:
            return JobObjectError(.systemCallFailed, "cannot \(what)\(place)", operation: operation, path: path, errno: errno)
        }
    }
}
