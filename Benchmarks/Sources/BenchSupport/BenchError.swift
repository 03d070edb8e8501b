/// A benchmark that cannot run, with what to do about it.
public struct BenchError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A benchmark variant that does not apply on this host, and why.
public struct Skip: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
