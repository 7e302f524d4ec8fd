import ArgumentParser
import Foundation
import RabbitMQ

/// `sameday-bench`: the performance goals, as numbers (one JSON line per subcommand). Run in release mode.
@main
struct SameDayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sameday-bench",
        subcommands: [
            AMQPBench.self, CoreBench.self, PipelineBench.self, RestartBench.self, AdapterBench.self, SoakBench.self,
            FailoverBench.self, NotifyBench.self, BoardBench.self, PredictBench.self,
        ])
}

/// `value / yardstick` to three decimals, as every bench line reports its ratios.
func ratio(_ value: Double, _ yardstick: Double) -> Double { (value / yardstick * 1000).rounded() / 1000 }

/// CPU seconds the calling thread has spent.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Each of this process's threads by id: its name as the operating system has it (`NamedThread`) and the CPU
/// seconds it has run, from `/proc/self/task/*/schedstat` (nanoseconds, where `stat` counts 10 ms ticks).
func threadsCPU() -> [Int32: (name: String, seconds: Double)] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    var threads: [Int32: (name: String, seconds: Double)] = [:]
    for task in tasks {
        guard let tid = Int32(task),
            let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
            let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8),
            let nanoseconds = stat.split(separator: " ").first.flatMap({ Double($0) })
        else { continue }  // a thread that ended meanwhile
        threads[tid] = (name.trimmingCharacters(in: .newlines), nanoseconds / 1e9)
    }
    return threads
}

/// CPU seconds this process has spent, all threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// CPU seconds (user and system) another process has used so far, from /proc/PID/stat; 0 once it is gone.
func processCPU(_ pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12 else { return 0 }
    return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The benches' broker: loopback, with no user or password in the URL, so RabbitMQ's default guest/guest applies (the
/// local broker takes it from loopback). A password on the command line would show to every local user (ps).
let localBrokerURL = "amqp://127.0.0.1:5672/%2F"

/// Refuses a `--url` that carries a password.
func refusePassword(inURL url: String) throws {
    guard BrokerURL.carriesPassword(url) else { return }
    throw ValidationError(
        "--url: the URL carries a password, which a command line shows to every local user (ps); the benches log in "
            + "as guest/guest on the local broker: give the URL without user and password (\(localBrokerURL))")
}
