import CBenchSupport
import Glibc
import JobObjects
import SystemPackage

/// From the OOM kill of a job member to `.outOfMemoryKill` on the job's
/// event stream. Needs the memory controller: `latency()` throws `Skip`,
/// with the library's reason, where it is missing.
///
/// The payload (`payload-memory-hog`) stamps CLOCK_MONOTONIC into a shared
/// page before each page it touches, so its last stamp is the kill.
public enum OutOfMemoryEvent {
    static var limits: JobLimits {
        var limits = JobLimits()
        limits.memoryMax = 32 << 20
        limits.swapMax = 0
        return limits
    }

    public static func latency() async throws -> UInt64 {
        let job: JobObject
        do {
            job = try JobObject.create(name: Workloads.uniqueJobName("bench-oom"), limits: limits)
        } catch  where error.code == .controllerUnavailable {
            throw Skip(error.message)
        }
        let latency: UInt64
        do {
            latency = try await measure(job)
        } catch {
            try? await job.close()
            throw error
        }
        try await job.close()
        return latency
    }

    private static func measure(_ job: JobObject) async throws -> UInt64 {
        let page = try SharedStampPage()
        var options = SpawnOptions(try HelperPrograms.path(HelperPrograms.memoryHog))
        options.extraDescriptors = [3: FileDescriptor(rawValue: page.fd)]
        let hog = try job.spawn(options)
        let end = await firstOutOfMemoryKill(in: job.events)
        _ = await hog.wait()
        guard let end else { throw BenchError("the memory hog ended without an .outOfMemoryKill event") }
        return end &- page.stamp
    }

    /// When `.outOfMemoryKill` arrived, or nil if a process exited first.
    private static func firstOutOfMemoryKill(in events: AsyncStream<JobEvent>) async -> UInt64? {
        for await event in events {
            switch event {
            case .outOfMemoryKill: return MonotonicClock.now()
            case .processExited: return nil
            default: continue
            }
        }
        return nil
    }

    /// Whether jobs under the default parent can have `memory.max`, or why not.
    public static func unavailableReason() -> String? {
        JobLifecycle.missingControllersReason(["memory"])
    }
}

/// One page of a memfd, mapped shared: the payload writes its stamps there.
final class SharedStampPage {
    let fd: CInt
    private let page: UnsafeMutableRawPointer

    init() throws(BenchError) {
        fd = bench_memfd("oom-stamp", 4096)
        guard fd >= 0 else { throw BenchError("memfd_create: errno \(errno)") }
        guard let mapped = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            close(fd)
            throw BenchError("mmap of the stamp page: errno \(errno)")
        }
        page = mapped
    }

    var stamp: UInt64 { page.load(as: UInt64.self) }

    deinit {
        munmap(page, 4096)
        close(fd)
    }
}
