import Glibc

/// Blocking reads and writes of exact byte counts on a pipe, retrying EINTR.
enum PipeIO {
    static func readExactly(_ fd: CInt, _ count: Int) throws(BenchError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
            if n > 0 {
                done += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            throw BenchError(n == 0 ? "pipe closed after \(done) of \(count) bytes" : "read failed: errno \(errno)")
        }
        return buffer
    }

    static func writeByte(_ fd: CInt) throws(BenchError) {
        var byte: UInt8 = 0x78
        while true {
            let n = write(fd, &byte, 1)
            if n == 1 { return }
            if n < 0 && errno == EINTR { continue }
            throw BenchError("write failed: errno \(errno)")
        }
    }
}
