import Foundation
import Glibc
import SystemPackage
@testable import JobObjects
import Testing

/// FileContents reads into one page first and reads again into more room
/// when the file is longer; these check the edges of that.
@Suite("reading small files")
struct FileContentsTests {
    @Test(arguments: [0, 1, 4095, 4096, 4097, 20_000, 70_000])
    func readsTheWholeFileWhateverItsLength(_ length: Int) throws {
        let path = "/tmp/jobobjects-contents-\(getpid())-\(length)"
        let text = String((0..<length).map { Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0 % 26))) })
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        defer { unlink(path) }
        #expect(try FileContents.read(path).get() == text)
    }

    @Test func repairsInvalidUTF8AsDecodingDoes() throws {
        let path = "/tmp/jobobjects-contents-\(getpid())-invalid"
        let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0xC3]
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        #expect(try FileContents.read(path).get() == String(decoding: bytes, as: UTF8.self))
    }

    @Test func generatedFilesAreReadToTheirEnd() throws {
        // A kernel-generated file that spans several reads.
        let maps = try FileContents.read("/proc/self/maps").get()
        #expect(maps.utf8.count > 4096)
        #expect(maps.hasSuffix("\n") && maps.contains("[stack]"))
    }

    @Test func aMissingFileIsItsErrno() {
        #expect(throws: Errno.noSuchFileOrDirectory) { try FileContents.read("/nonexistent-\(getpid())").get() }
    }
}
