import CBenchSupport
import Glibc

/// Anonymous memory, touched page by page, that brings this process's
/// resident set up to a target: the "big parent" of the spawn-latency
/// benchmark. Huge pages are refused so the page tables are as large as a
/// real heap's would be (what fork would have to copy).
public final class MemoryBallast {
    private let base: UnsafeMutableRawPointer?
    private let length: Int

    /// This process's resident set size, in bytes.
    public static var residentBytes: Int { Int(bench_resident_bytes()) }

    /// Grows the resident set to about `targetResidentBytes` (nothing is
    /// allocated when it is already that large).
    public init(targetResidentBytes: Int) throws(BenchError) {
        let missing = targetResidentBytes - Self.residentBytes
        guard missing > 0 else {
            base = nil
            length = 0
            return
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        length = (missing + page - 1) / page * page
        guard let pointer = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            pointer != MAP_FAILED
        else {
            throw BenchError("cannot map \(missing >> 20) MiB of ballast: errno \(errno)")
        }
        base = pointer
        _ = madvise(pointer, length, MADV_NOHUGEPAGE)
        let bytes = pointer.assumingMemoryBound(to: UInt8.self)
        for offset in stride(from: 0, to: length, by: page) { bytes[offset] = 1 }
    }

    deinit {
        if let base { munmap(base, length) }
    }
}
