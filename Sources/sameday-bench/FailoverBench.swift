import ArgumentParser
import Foundation
import SameDayCore
import SameDayFormats
import SameDayPostgres
import SameDayStore
import SameDayWorker

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday-bench failover`: high availability, measured end to end with real processes. A three-node RabbitMQ
/// cluster (deploy/cluster/cluster.sh), a local PostgreSQL (deploy/postgres/local-postgres.sh), two `sameday worker`
/// processes per shard sharing the PostgreSQL store (one active, one standby), and the adapter (`sameday publish`)
/// publishing a realistic simulated month. During the run it SIGKILLs the active worker of two shards, then stops the
/// broker node that leads the most shard queues. At the end, one JSON line:
///
/// - `events_applied` must equal `events_distinct` (nothing lost, nothing applied twice: the event log in
///   PostgreSQL holds one row per applied event);
/// - `alerts_doubled` must be 0: alert ids appearing twice in the alert files supervisors read;
/// - `alerts_wrong` must be 0: alerts the workers raised that an uninterrupted run over the same events, in the
///   order each shard applied them, does not raise (what a standby firing from stale state would add: alerts for
///   dossiers already closed); `alerts_missing` likewise for alerts it raises and the workers did not;
/// - `rollups_equal_replay`: the merged rollups against `sameday replay` of the month, byte for byte;
/// - `takeover_seconds`: for the slowest of the killed shards, from the SIGKILL until its standby is ready
///   (`/readyz`), which includes the lease's expiry (`leaseSeconds`), the lease poll, the state load and the missed
///   timers.
///
/// With `--freeze` the active workers are SIGSTOPped instead (a machine that hangs, a network that drops: the
/// process and its sessions stay, silent). `lease_taken_seconds` is the slowest time from the SIGSTOP until the
/// standby holds the lease, against the goal of `leaseSeconds` + 2 s (`lease_taken_within_goal`); `takeover_seconds`
/// adds the state load until it is ready, which grows with the shard and the machine's load. Each frozen worker,
/// resumed with SIGCONT once its standby serves the shard, must stop on its own without committing
/// (`frozen_workers_stopped`: it exits saying its lease was lost; the fencing refuses its commits, and the checks
/// above would count anything it applied or fired twice). The exit status follows correctness only: timings on a
/// shared machine are figures, not a gate.
struct FailoverBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Kill active workers and a broker node mid-run: nothing lost, doubled or wrong (one JSON line).")

    @Option(help: "Share of the seed's month (realistic scenario).") var scale = 0.05
    @Option(help: "Shards (two workers each).") var shards = 4
    @Option(help: "The sameday binary (default: beside this one).") var sameday: String?
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Work folder (default: a new one under /tmp).") var out: String?
    @Flag(help: "Keep the work folder and leave nothing running.") var keep = false
    @Flag(help: "SIGSTOP the active workers instead of SIGKILL, then resume them once their standby serves.")
    var freeze = false

    func validate() throws {
        guard scale > 0, scale <= 1 else { throw ValidationError("--scale must be in (0, 1]") }
        guard (2...16).contains(shards) else { throw ValidationError("--shards must be 2…16 (two shards are killed)") }
    }

    func run() throws {
        let bench = try FailoverRun(
            scale: scale, shards: shards, freeze: freeze,
            sameday: sameday
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sameday").path,
            config: config,
            folder: out ?? NSTemporaryDirectory() + "sameday-failover-bench-\(getpid())")
        var passed = false
        defer { bench.cleanUp(removeFolder: passed && !keep) }
        let result = try bench.measure()
        print(try jsonLine(result.json))
        passed = result.passed
        if !passed { throw ExitCode.failure }
    }
}

/// One failover run: the processes it started and the folder it works in.
final class FailoverRun {
    let scale: Double
    let freeze: Bool
    /// The shipped lease time (`leaseSeconds`).
    let leaseSeconds = WorkerConfiguration().leaseSeconds
    let shards: Int
    let sameday: String
    let config: String
    let folder: String
    let clusterScript = "deploy/cluster/cluster.sh"
    let postgresScript = "deploy/postgres/local-postgres.sh"
    var storeURL: String
    var passwordFile: String
    /// Worker processes by shard: two each.
    var workers: [[ChildProcess]] = []
    var publisher: ChildProcess?

    init(scale: Double, shards: Int, freeze: Bool, sameday: String, config: String, folder: String) throws {
        self.scale = scale
        self.freeze = freeze
        self.shards = shards
        self.sameday = URL(fileURLWithPath: sameday).standardizedFileURL.path
        self.config = config
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        guard FileManager.default.isExecutableFile(atPath: self.sameday) else {
            throw ValidationError("\(sameday): not an executable (build it, or pass --sameday)")
        }
        let postgres = ["SAMEDAY_PG_DIR": folder + "/postgres", "SAMEDAY_PG_PORT": "5434"]
        postgresEnvironment = postgres
        storeURL = ""
        passwordFile = ""
        try shell(postgresScript, ["start"], environment: postgres)
        storeURL = try shell(postgresScript, ["url"], environment: postgres)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        passwordFile = try shell(postgresScript, ["password-file"], environment: postgres)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// This run's own cluster (ports 5673–5675) and PostgreSQL server (port 5434), in its folder.
    var clusterEnvironment: [String: String] { ["SAMEDAY_CLUSTER_DIR": folder + "/cluster"] }
    let postgresEnvironment: [String: String]

    struct Result {
        var json: [String: Any]
        var passed: Bool
    }

    func measure() throws -> Result {
        let started = Date()
        try shell(clusterScript, ["start"], environment: clusterEnvironment)
        let urls = try shell(clusterScript, ["urls"]).trimmingCharacters(in: .whitespacesAndNewlines)
        // The cluster and the PostgreSQL server are this run's own: SameDay's names as shipped.
        let prefix = ""
        try shell(
            sameday, ["topology", "declare", "--shards", "\(shards)", "--url", String(urls.split(separator: ",")[0])])
        let month = folder + "/month.jsonl"
        try shell(
            sameday,
            ["simulate", "--config", config, "--scenario", "realistic", "--scale", "\(scale)", "--out", month])
        let lines = try String(contentsOfFile: month, encoding: .utf8).split(separator: "\n")
        var distinct = Set<String>()
        for line in lines {
            let event = try DossierEvent.decode(bytes: Array(line.utf8))
            distinct.insert(event.dossier + "\u{0}" + event.eventId)
        }

        // Two workers per shard, on the events clock, each with its own state folder (its own machine) and metrics
        // port; a shard's two workers share its output folders. The audit log is kept for the whole run (the
        // realistic month's late events move the events clock past the default 62 days, and the checks below read
        // every applied event back from it); everything else is as shipped.
        try Data(#"{"eventLogDays": 3660}"#.utf8).write(to: URL(fileURLWithPath: folder + "/worker.json"))
        for shard in 0..<shards {
            workers.append(try (0..<2).map { try startWorker(shard: shard, index: $0, urls: urls, prefix: prefix) })
        }
        let readers = try (0..<shards).map { shard in
            try PostgresShardStore(
                url: PostgresStoreURL(storeURL), passwordFile: passwordFile, shard: prefix + "sameday.work.\(shard)",
                fencingEpoch: nil)
        }
        let leases = try (0..<shards).map { shard in
            try ShardLease(
                url: PostgresStoreURL(storeURL), passwordFile: passwordFile, shard: prefix + "sameday.work.\(shard)",
                holder: "failover bench (reads only)")
        }
        func applied() -> Int { readers.reduce(0) { $0 + ((try? $1.eventCount()) ?? 0) } }
        func waitFor(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while try !condition() {
                guard Date() < deadline else { throw ValidationError("failover bench: timed out waiting for \(what)") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        try waitFor("every shard's lease taken", seconds: 120) {
            try leases.allSatisfy { try $0.currentHolder() != nil }
        }

        // The adapter publishes the month to the cluster, all of it, while the failures happen.
        publisher = try spawn(
            sameday,
            [
                "publish", "--profile", "deploy/adapters/profiles/simulated-jsonl.json", "--config", config, "--spool",
                folder + "/spool", month,
            ],
            environment: ["SAMEDAY_AMQP_URL": urls], log: folder + "/publish.log")

        // 1. A quarter in: SIGKILL the active worker of shards 0 and 1.
        try waitFor("a quarter of the events applied", seconds: 600) { applied() >= distinct.count / 4 }
        var takeoverSeconds: [Double] = []
        var leaseTakenSeconds: [Double] = []
        var frozenStopped = 0
        var frozenHeldFileLocks = 0
        var resumeToStopSeconds = 0.0
        for shard in 0..<2 {
            let (holder, _) = try leases[shard].currentHolder()!
            guard let pid = Int32(holder.split(separator: " ").last ?? ""),
                let index = workers[shard].firstIndex(where: { $0.pid == pid })
            else { throw ValidationError("failover bench: shard \(shard) is held by \(holder), not one of ours") }
            let active = workers[shard][index]
            active.kill(freeze ? SIGSTOP : SIGKILL)
            let killedAt = Date()
            let standby = 1 - index
            if !freeze { active.wait() }
            // The standby holds the lease: the holder's pid is another.
            try waitFor("shard \(shard)'s lease taken over", seconds: 120) {
                guard let now = try leases[shard].currentHolder() else { return false }
                return !now.holder.hasSuffix(" pid \(active.pid)")
            }
            leaseTakenSeconds.append(Date().timeIntervalSince(killedAt))
            // Ready again: the standby consumes. A worker frozen inside its append to an alert file holds that
            // file's lock: the standby then waits for its files (not ready, nothing doubled) until the frozen one
            // is resumed, which this run does after 20 s of waiting.
            var resumedBeforeReady = false
            var resumedAt = Date()
            if freeze {
                do {
                    try waitFor("shard \(shard)'s standby ready", seconds: 20) {
                        try self.ready(metricsPort(shard: shard, index: standby))
                    }
                } catch {
                    resumedBeforeReady = true
                    frozenHeldFileLocks += 1
                    active.kill(SIGCONT)
                    resumedAt = Date()
                }
            }
            try waitFor("shard \(shard)'s standby ready", seconds: 120) {
                try self.ready(metricsPort(shard: shard, index: standby))
            }
            takeoverSeconds.append(Date().timeIntervalSince(killedAt))
            if freeze {
                // Resumed: it must notice the lost lease on its own and stop, committing nothing.
                if !resumedBeforeReady {
                    active.kill(SIGCONT)
                    resumedAt = Date()
                }
                do {
                    try waitFor("shard \(shard)'s frozen worker to stop", seconds: 60) { !active.isRunning }
                } catch {
                    // Where it hangs, for whoever reads the kept folder (gdb, where installed).
                    _ = try? ChildProcess.run(
                        ["/usr/bin/gdb", "-p", "\(active.pid)", "-batch", "-ex", "thread apply all bt"],
                        output: "\(folder)/frozen-worker-\(shard)-threads.txt")
                    throw error
                }
                let log = (try? String(contentsOfFile: "\(folder)/worker-\(shard)-\(index).log", encoding: .utf8)) ?? ""
                if active.wait() != 0, log.contains("lease lost") || log.contains("was taken over") {
                    frozenStopped += 1
                }
                resumeToStopSeconds = max(resumeToStopSeconds, Date().timeIntervalSince(resumedAt))
            }
        }
        let takeover = takeoverSeconds.max() ?? 0

        // 2. Half-way: stop the broker node leading the most shard queues.
        try waitFor("half of the events applied", seconds: 600) { applied() >= distinct.count / 2 }
        let leaders = try shell(clusterScript, ["leaders"], environment: clusterEnvironment)
            .split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
            .filter { $0.count == 2 && $0[0].hasPrefix(prefix + "sameday.work.") }
        let node = Dictionary(grouping: leaders, by: { $0[1] }).max { $0.value.count < $1.value.count }?.key ?? "a"
        let appliedAtNodeLoss = applied()
        try shell(clusterScript, ["stop-node", node], environment: clusterEnvironment)

        // 3. Everything published and applied; the surviving workers stop gracefully.
        guard publisher!.wait() == 0 else {
            throw ValidationError("failover bench: the adapter failed (\(folder)/publish.log)")
        }
        try waitFor("every event applied", seconds: 900) { applied() >= distinct.count }
        Thread.sleep(forTimeInterval: 2)  // any late double would land now
        // CPU spent: the surviving workers (read before they stop) and the PostgreSQL server with every backend,
        // the killed workers' included (the postmaster reaps them into its children's time).
        let workerCPU = workers.joined().filter(\.isRunning).reduce(0.0) { $0 + cpuSeconds(pid: $1.pid) }
        let postgresCPU = postgresServerCPUSeconds()
        for process in workers.joined() { process.kill(SIGTERM) }
        for process in workers.joined() { process.wait() }

        // 4. What the workers did, against what they should have done.
        var eventsApplied = 0
        var appliedTwice = 0
        var alertsOutbox = 0
        var wrong = 0
        var missing = 0
        let domain = try ConfigurationFolder.load(config)
        for reader in readers {
            var applied: [DossierEvent] = []
            var seen = Set<String>()
            try reader.forEachLoggedEvent { _, bytes, _ in
                let event = try DossierEvent.decode(bytes: bytes)
                if !seen.insert(event.dossier + "\u{0}" + event.eventId).inserted { appliedTwice += 1 }
                applied.append(event)
            }
            eventsApplied += applied.count
            let outbox = Set(try reader.allAlerts().map(\.alertID))
            alertsOutbox += outbox.count
            // The reference: an uninterrupted run over the shard's events in the order it applied them, to the
            // clock it ended at.
            let reference = try Replay.run(
                events: applied, config: domain,
                options: ReplayOptions(arrivalOrder: true, until: try reader.clock()))
            let expected = Set(reference.alerts.map(\.alertId))
            wrong += outbox.subtracting(expected).count
            missing += expected.subtracting(outbox).count
        }
        var filed: [String] = []
        for shard in 0..<shards { filed += alertIDs(folder: "\(folder)/shard-\(shard)/alerts") }
        let doubled = filed.count - Set(filed).count

        // 5. The merged rollups against replay of the whole month.
        let rollups = (0..<shards).flatMap { ["--rollups", "\(folder)/shard-\($0)/rollups"] }
        try shell(
            sameday,
            ["report"] + rollups + [
                "--from", "2022-05-15", "--to", "2022-06-15", "--format", "csv", "--out",
                folder + "/workers.csv",
            ])
        try shell(sameday, ["replay", "--config", config, "--events", month, "--out", folder + "/replay"])
        try shell(
            sameday,
            [
                "report", "--rollups", folder + "/replay/rollups", "--from", "2022-05-15", "--to", "2022-06-15",
                "--format", "csv", "--out", folder + "/replay.csv",
            ])
        let rollupsEqual =
            FileManager.default.contents(atPath: folder + "/workers.csv")
            == FileManager.default.contents(atPath: folder + "/replay.csv")

        let leaseTaken = leaseTakenSeconds.max() ?? 0
        let leaseTakenWithinGoal = leaseTaken <= Double(leaseSeconds) + 2
        let passed =
            eventsApplied == distinct.count && appliedTwice == 0 && doubled == 0 && wrong == 0 && missing == 0
            && rollupsEqual && (!freeze || frozenStopped == 2)
        return Result(
            json: [
                "bench": "failover", "scale": scale, "shards": shards, "workers": shards * 2,
                "events_published": lines.count, "events_distinct": distinct.count, "events_applied": eventsApplied,
                "events_applied_twice": appliedTwice, "alerts": alertsOutbox, "alerts_filed": filed.count,
                "alerts_doubled": doubled, "alerts_wrong": wrong, "alerts_missing": missing,
                "workers_killed": freeze ? 0 : 2, "workers_frozen": freeze ? 2 : 0,
                "frozen_workers_stopped": frozenStopped,
                "frozen_held_an_alert_file_lock": frozenHeldFileLocks,
                "frozen_resume_to_stop_seconds": (resumeToStopSeconds * 1000).rounded() / 1000,
                "lease_seconds": leaseSeconds, "lease_taken_seconds": (leaseTaken * 1000).rounded() / 1000,
                "lease_taken_within_goal": leaseTakenWithinGoal,
                "broker_node_stopped": node, "applied_at_node_loss": appliedAtNodeLoss,
                "takeover_seconds": (takeover * 1000).rounded() / 1000, "rollups_equal_replay": rollupsEqual,
                "seconds": Date().timeIntervalSince(started).rounded(), "passed": passed,
                // Per applied event: what the scaling page sizes the shared store with. The killed workers' CPU is
                // not counted, so the workers' figure is a little low.
                "surviving_workers_cpu_us_per_event": (workerCPU / Double(max(eventsApplied, 1)) * 1e6).rounded(),
                "postgres_cpu_us_per_event": (postgresCPU / Double(max(eventsApplied, 1)) * 1e6).rounded(),
            ], passed: passed)
    }

    /// The PostgreSQL server's CPU seconds: the postmaster, its reaped children and its live ones.
    func postgresServerCPUSeconds() -> Double {
        guard let text = try? String(contentsOfFile: folder + "/postgres/data/postmaster.pid", encoding: .utf8),
            let postmaster = Int32(text.split(separator: "\n").first ?? "")
        else { return 0 }
        var total = cpuSeconds(pid: postmaster, includingReapedChildren: true)
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in processes {
            guard let pid = Int32(name), let stat = procStat(pid), stat.count > 1, Int32(stat[1]) == postmaster else {
                continue
            }
            total += cpuSeconds(pid: pid)
        }
        return total
    }

    func metricsPort(shard: Int, index: Int) -> Int { 9700 + shard * 2 + index }

    func startWorker(shard: Int, index: Int, urls: String, prefix: String) throws -> ChildProcess {
        let state = "\(folder)/worker-\(shard)-\(index)"
        return try spawn(
            sameday, ["worker", "--config", folder + "/worker.json", "--log-level", "info"],
            environment: [
                "SAMEDAY_AMQP_URL": urls, "SAMEDAY_NAME_PREFIX": prefix, "SAMEDAY_SHARD": "\(shard)",
                "SAMEDAY_SHARDS": "\(shards)", "SAMEDAY_STORE": storeURL, "SAMEDAY_STORE_PASSWORD_FILE": passwordFile,
                "SAMEDAY_STATE_DIR": state, "SAMEDAY_ALERTS_DIR": "\(folder)/shard-\(shard)/alerts",
                "SAMEDAY_ROLLUPS_DIR": "\(folder)/shard-\(shard)/rollups", "SAMEDAY_DOMAIN_CONFIG": config,
                "SAMEDAY_CLOCK": "events", "SAMEDAY_SOURCE_SILENCE": "0",
                "SAMEDAY_METRICS_LISTEN": "127.0.0.1:\(metricsPort(shard: shard, index: index))",
            ], log: state + ".log")
    }

    /// Whether a worker's `/readyz` answers 200 (curl: one request, one second at most).
    func ready(_ port: Int) throws -> Bool {
        try ChildProcess.run(
            ["/usr/bin/curl", "-sf", "-m", "1", "-o", "/dev/null", "http://127.0.0.1:\(port)/readyz"], output: nil
        ) == 0
    }

    func cleanUp(removeFolder: Bool) {
        for process in workers.joined() { process.kill(SIGKILL) }
        publisher?.kill(SIGKILL)
        _ = try? shell(clusterScript, ["stop"], environment: clusterEnvironment)
        _ = try? shell(postgresScript, ["stop"], environment: postgresEnvironment)
        if removeFolder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func spawn(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws
        -> ChildProcess
    {
        try ChildProcess([executable] + arguments, environment: environment, output: log)
    }

    /// Runs a command (a `.sh` script through bash) to its end; its output, or an error with its last lines.
    @discardableResult
    func shell(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let argv = executable.hasSuffix(".sh") ? ["/bin/bash", executable] + arguments : [executable] + arguments
        let output = folder + "/.command-output"
        let status = try ChildProcess.run(argv, environment: environment, output: output)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw ValidationError("\(executable) \(arguments.joined(separator: " ")) failed: \(text.suffix(1500))")
        }
        return text
    }
}

/// A child process started with posix_spawn and reaped with waitpid: Foundation's `Process` missed the exit of a
/// short-lived child here (its `waitUntilExit` hung on a zombie), and the bench starts dozens of them.
final class ChildProcess {
    let pid: pid_t
    private(set) var status: Int32?

    /// Starts `argv` with the current environment plus `environment`; standard output and error go to `output`
    /// (truncated), or to /dev/null.
    init(_ argv: [String], environment: [String: String] = [:], output: String?) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // A child starts with no signal blocked, whatever this thread blocks: SIGTERM must reach a sink.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        guard result == 0 else { throw ValidationError("cannot start \(argv[0]): errno \(result)") }
        self.pid = pid
    }

    /// Runs `argv` to its end and returns its exit status.
    static func run(_ argv: [String], environment: [String: String] = [:], output: String?) throws -> Int32 {
        let child = try ChildProcess(argv, environment: environment, output: output)
        return child.wait()
    }

    var isRunning: Bool {
        guard status == nil else { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            status = Self.exitStatus(raw)
            return false
        }
        return true
    }

    @discardableResult
    func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        status = Self.exitStatus(raw)
        return status!
    }

    func kill(_ signal: Int32) { if isRunning { _ = Glibc.kill(pid, signal) } }

    /// The exit code, or 128 + the signal for a child killed by one (as a shell reports it).
    static func exitStatus(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }
}

/// The fields of /proc/<pid>/stat after the command name (index 0 is the state, 1 the parent, 11 utime, 12 stime,
/// 13 cutime, 14 cstime, in clock ticks).
private func procStat(_ pid: Int32) -> [Substring]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    return text[text.index(after: close)...].split(separator: " ")
}

/// CPU seconds a live process used (user and system), with its reaped children's if asked.
private func cpuSeconds(pid: Int32, includingReapedChildren: Bool = false) -> Double {
    guard let fields = procStat(pid), fields.count > 14 else { return 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    if includingReapedChildren { total += (Double(fields[13]) ?? 0) + (Double(fields[14]) ?? 0) }
    return total / ticks
}

/// The alert ids in a folder of daily alert files, duplicates kept.
private func alertIDs(folder: String) -> [String] {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return files.sorted().filter { $0.hasSuffix(".jsonl") }.flatMap { name -> [String] in
        guard let data = FileManager.default.contents(atPath: folder + "/" + name) else { return [] }
        return data.split(separator: 0x0A).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["alertId"] as? String
        }
    }
}
