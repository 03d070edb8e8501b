import Foundation
import Testing

/// The watchdog runs in its owner's memory on the owner thread's TLS, so
/// the code it runs must call nothing but itself and raw syscalls: a libc
/// wrapper would store errno in that thread's TLS, and a first call through
/// a lazily bound PLT slot would run the dynamic linker on its behalf (see
/// watchdog.c). This reads the compiled object (the debug build's, which
/// these tests run) and follows every call from the watchdog's entry.
@Suite("the watchdog's code")
struct WatchdogCodeTests {
    @Test func callsNothingOutsideItsOwnFile() throws {
        let object = try #require(watchdogObject(), "watchdog.c.o not found beside the test bundle")
        let calls = try callGraph(of: object)
        var reached: Set<String> = []
        var pending = ["watchdog_child"]
        var outside: [String] = []
        while let function = pending.popLast() {
            guard reached.insert(function).inserted else { continue }
            guard let callees = calls[function] else {
                outside.append(function)
                continue
            }
            pending += callees
        }
        #expect(outside.isEmpty, "the watchdog calls \(outside.sorted()) (defined outside watchdog.c)")
        // The walk really covered the watchdog: its loop, the command
        // handler, the cgroup removal and the exec.
        #expect(reached.isSuperset(of: ["watchdog_main", "handle_command", "remove_children", "exec_own_image"]))
    }
}

/// CJobShim's compiled watchdog.c, in the build directory of this bundle.
private func watchdogObject() -> String? {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let bundle = URL(fileURLWithPath: executable).deletingLastPathComponent()
    let path = bundle.appendingPathComponent("CJobShim.build/watchdog.c.o").path
    return FileManager.default.fileExists(atPath: path) ? path : nil
}

/// Each function defined in `object` and what it calls, from `objdump -dr`:
/// a call to a function of the same file is resolved in place ("call 9e0
/// <write_file>"), any other carries a relocation naming its target.
private func callGraph(of object: String) throws -> [String: [String]] {
    let objdump = Process()
    objdump.executableURL = URL(fileURLWithPath: "/usr/bin/objdump")
    objdump.arguments = ["-dr", "--no-show-raw-insn", object]
    let output = Pipe()
    objdump.standardOutput = output
    try objdump.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    objdump.waitUntilExit()
    #expect(objdump.terminationStatus == 0)

    var calls: [String: [String]] = [:]
    var current: String?
    var pendingCall: String?  // a call whose relocation may follow
    func flush() {
        if let call = pendingCall, let function = current { calls[function, default: []].append(call) }
        pendingCall = nil
    }
    for line in text.split(separator: "\n") {
        // "00000000000008e0 <watchdog_child>:"
        if line.hasSuffix(">:"), let open = line.firstIndex(of: "<") {
            flush()
            let name = String(line[line.index(after: open)..<line.index(line.endIndex, offsetBy: -2)])
            // Defined here, even if it calls nothing.
            if calls[name] == nil { calls[name] = [] }
            current = name
            continue
        }
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        // "2b: R_X86_64_PLT32 __errno_location-0x4": the real target of the call before.
        if fields.count >= 3, fields[1].hasPrefix("R_"), pendingCall != nil {
            let symbol = fields[2].split(separator: "-").first.map(String.init) ?? String(fields[2])
            pendingCall = symbol.split(separator: "+").first.map(String.init) ?? symbol
            flush()
            continue
        }
        flush()
        // "85: call 9e0 <write_file>" (x86_64) or "bl" (arm64).
        if fields.count >= 4, fields[1] == "call" || fields[1] == "bl", let target = fields.last,
           target.hasPrefix("<"), target.hasSuffix(">") {
            let name = target.dropFirst().dropLast()
            pendingCall = String(name.split(separator: "+").first ?? name)
        }
    }
    flush()
    return calls
}
