import Foundation
import RabbitMQ
import Testing

@testable import SameDayFiles

#if canImport(Glibc)
    import Glibc
#endif

/// Thread names reach the operating system (`top -H`, `ps -L`, `perf`), where Foundation's `Thread.name` does not.
@Suite("Thread names the operating system sees")
struct ThreadNameTests {
    /// The names of this process's threads, as the kernel has them.
    static func osThreadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .newlines)
        }
    }

    @Test("a NamedThread and a BlockingThread carry their names while they run")
    func namesWhileRunning() async throws {
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        NamedThread.start("sameday.commit") {
            started.signal()
            release.wait()
        }
        started.wait()
        #expect(Self.osThreadNames().contains("sameday.commit"))
        release.signal()

        let seen = try await BlockingThread.run(name: "sameday.worker") { Self.osThreadNames() }
        #expect(seen.contains("sameday.worker"))
        // The same rule as a NamedThread's: a name too long loses its prefix, not its end.
        let long = try await BlockingThread.run(name: "sameday.publish.tail") { Self.osThreadNames() }
        #expect(long.contains("publish.tail"))
    }

    @Test("too long for Linux: the sameday. prefix goes first, then the name is cut to 15 bytes")
    func longNames() {
        #expect(NamedThread.osName("sameday.commit") == "sameday.commit")
        #expect(NamedThread.osName("sameday.rollups") == "sameday.rollups")
        #expect(NamedThread.osName("sameday.send.email") == "send.email")
        #expect(NamedThread.osName("sameday.lease-renewal") == "lease-renewal")
        #expect(NamedThread.osName("sameday.send.a-very-long-webhook") == "send.a-very-lon")
        #expect(NamedThread.osName("bench bare consumer") == "bench bare cons")
    }
}
