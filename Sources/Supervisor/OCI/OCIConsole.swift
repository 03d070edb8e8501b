import Glibc
import JobObjects
import SystemPackage

/// A container's terminal, runc's way: the runtime makes a pseudo-terminal,
/// sends its controller end over the engine's `--console-socket` (a Unix
/// socket, the descriptor in an `SCM_RIGHTS` message) and keeps none of it;
/// the process gets the terminal end as standard input, output and error,
/// and as its controlling terminal. The engine (the containerd shim,
/// conmon) relays the controller to the user.
enum OCIConsole {
    /// What `--console-socket` and `process.terminal` together ask for:
    /// both or neither, as runc requires.
    static func check(terminal: Bool, socket: String?, source: String) throws(OCIRuntimeError) {
        switch (terminal, socket) {
        case (true, nil):
            throw OCIRuntimeError(
                "\(source): process.terminal is true, which needs --console-socket SOCKET to hand the terminal to (the engine gives it with -t)"
            )
        case (false, .some):
            throw OCIRuntimeError("--console-socket was given but \(source) has process.terminal false; set it true, or drop the socket")
        default:
            return
        }
    }

    /// With a socket: makes the terminal, sends its controller end to
    /// `socketPath`, and sets up `options` to run on the terminal end, which
    /// is returned for the caller to close once the process is spawned.
    static func attach(
        _ options: inout SpawnOptions, socketPath: String?, size: (rows: UInt16, columns: UInt16)?
    ) throws(OCIRuntimeError) -> FileDescriptor? {
        guard let socketPath else { return nil }
        let pty: PseudoTerminal
        do {
            pty = try PseudoTerminal.open()
        } catch {
            throw OCIRuntimeError("cannot make a terminal: \(error.message)")
        }
        defer { try? pty.controller.close() }
        do throws(OCIRuntimeError) {
            if let size, size.rows > 0, size.columns > 0 {
                var window = winsize(ws_row: size.rows, ws_col: size.columns, ws_xpixel: 0, ws_ypixel: 0)
                if ioctl(pty.controller.rawValue, UInt(TIOCSWINSZ), &window) != 0 {
                    throw OCIRuntimeError("cannot set the terminal's size: \(String(cString: strerror(errno)))")
                }
            }
            try send(pty.controller, name: pty.path.string, to: socketPath)
        } catch {
            try? pty.terminal.close()
            throw error
        }
        options.processGroup = .newSessionWithTerminal
        options.standardInput = .fileDescriptor(pty.terminal)
        options.standardOutput = .fileDescriptor(pty.terminal)
        options.standardError = .fileDescriptor(pty.terminal)
        return pty.terminal
    }

    /// One `sendmsg` on a new connection to `path`: `name` as the data
    /// (runc sends the terminal's name; receivers ignore it) and `fd`.
    private static func send(_ fd: FileDescriptor, name: String, to path: String) throws(OCIRuntimeError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity, !path.isEmpty else {
            throw OCIRuntimeError("--console-socket \(path.prefix(200)) must be a socket path of 1 to \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            bytes.copyBytes(from: path.utf8)
        }
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw OCIRuntimeError("cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw OCIRuntimeError("cannot connect to the console socket \(path): \(String(cString: strerror(errno)))")
        }
        // One control message holding one descriptor: a cmsghdr, then the
        // int, padded to the header's alignment (CMSG_SPACE(sizeof(int))).
        let header = MemoryLayout<cmsghdr>.size
        let alignment = MemoryLayout<Int>.size
        let space = header + (MemoryLayout<Int32>.size + alignment - 1) / alignment * alignment
        var control = [UInt8](repeating: 0, count: space)
        var rights = cmsghdr()
        rights.cmsg_len = header + MemoryLayout<Int32>.size
        rights.cmsg_level = SOL_SOCKET
        rights.cmsg_type = Int32(SCM_RIGHTS)
        control.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: rights, as: cmsghdr.self)
            bytes.storeBytes(of: fd.rawValue, toByteOffset: header, as: Int32.self)
        }
        var data = Array(name.utf8)
        let sent = data.withUnsafeMutableBytes { dataBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    return sendmsg(socket, &message, Int32(MSG_NOSIGNAL))
                }
            }
        }
        guard sent >= 0 else {
            throw OCIRuntimeError("cannot send the terminal to the console socket \(path): \(String(cString: strerror(errno)))")
        }
    }
}
