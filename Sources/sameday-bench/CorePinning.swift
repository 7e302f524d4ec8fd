import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// CPU affinity for `pipeline --worker-core`: the broker and the publisher on core 0, the consuming side on core 1,
/// as when the worker has a machine of its own (production runs the broker, the adapters and each worker as separate
/// processes on separate machines). Without it, all share both cores of this machine.
enum CorePinning {
    /// Pins the calling thread to `core`; the threads it starts from then on inherit the pin.
    static func pinCurrentThread(to core: Int) throws {
        // glibc's sched_setaffinity is declared only under _GNU_SOURCE, which Swift's Glibc module leaves out.
        guard let symbol = dlsym(nil, "sched_setaffinity") else {
            throw ValidationError("sched_setaffinity is not available")
        }
        let setAffinity = unsafeBitCast(
            symbol, to: (@convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32).self)
        var mask = [UInt8](repeating: 0, count: 128)  // a cpu_set_t: 1,024 bits
        mask[core / 8] |= UInt8(1 << (core % 8))
        guard mask.withUnsafeBytes({ setAffinity(0, $0.count, $0.baseAddress!) }) == 0 else {
            throw ValidationError("cannot pin a thread to core \(core): errno \(errno)")
        }
    }

    /// Pins every thread of every local RabbitMQ node (`beam.smp`) to `cores` (a `taskset` list such as "0" or
    /// "0-1"); returns how many nodes it pinned.
    @discardableResult
    static func pinBrokers(to cores: String) async throws -> Int {
        let nodes = brokerProcesses()
        for pid in nodes {
            let (status, _) = try await runProcess("/usr/bin/taskset", ["-a", "-p", "-c", cores, "\(pid)"])
            guard status == 0 else { throw ValidationError("taskset could not pin broker pid \(pid) to \(cores)") }
        }
        return nodes.count
    }

    /// Every core of this machine, as a `taskset` list.
    static var allCores: String { "0-\(max(0, ProcessInfo.processInfo.activeProcessorCount - 1))" }

    private static func brokerProcesses() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                let name = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
                name.trimmingCharacters(in: .whitespacesAndNewlines) == "beam.smp"
            else { return nil }
            return pid
        }
    }
}
