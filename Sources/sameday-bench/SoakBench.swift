import ArgumentParser
import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayWorker

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday-bench soak`: a year of the HCMC configuration through the worker's engine and store, in process (no
/// broker): every generated event becomes the `Delivery` the broker would hand over (body, message id, routing key,
/// `dossier` header) and goes through `ShardLoop.handle` and `ShardLoop.step`, exactly what the consume loop does,
/// on the events' clock. At every month end: a rollup snapshot, then a restart (close the loop, open a new one on the
/// same folder). One JSON line per simulated month, then the month-12-against-month-3 ratios.
struct SoakBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract:
            "A year of the city's events through the worker's engine and store: state, snapshot and restart per month."
    )

    @Option(help: "Simulated months, from 2022-01-01.") var months = 12
    @Option(help: "Share of the city's volume (1: about 2 million events a month).") var scale = 1.0
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Flag(help: "Keep the state folder (under /tmp) at the end.") var keep = false

    /// Dossiers per unit and day at `--scale 1`. The generator draws 0…2k dossiers a unit and working day (k on
    /// average) over the 360 units of the HCMC configuration, on their calendars' working days, with about 3
    /// events per dossier (1 % sent twice): about 22,400 events a month per unit of k (2022, measured at k = 24), so
    /// k = 96, not the 62 first assumed (1.4 M a month), gives the seed's volume: about 2.15 million events a month,
    /// 26 M a year.
    static let dossiersPerUnitPerDayAtScale1 = 96.0

    func run() async throws {
        let months = months, scale = scale, config = config, keep = keep
        guard months >= 1 else { throw ValidationError("--months must be ≥ 1") }
        guard scale > 0 else { throw ValidationError("--scale must be > 0") }
        try await BlockingThread.run(name: "sameday.soak") {
            try Self.soak(months: months, scale: scale, config: config, keep: keep)
        }
    }

    struct Month {
        var events: Int
        var seconds: Double
        var restart: Double
        var snapshot: Double
        var snapshotFull: Double
        var snapshotMean: Double
        var restartCPU: Double
        var snapshotCPU: Double
        var snapshotFullCPU: Double
        var stateBytes: Int64
    }

    /// A restart and the full snapshot after it, timed (wall and process CPU seconds).
    struct Timed {
        var restart = Double.infinity, restartCPU = Double.infinity
        /// From the start of the restart until the rollups thread has loaded every dossier.
        var rollupsReady = Double.infinity
        var snapshotFull = Double.infinity, snapshotFullCPU = Double.infinity
        /// Each measure's faster sample.
        func fastest(_ other: Timed) -> Timed {
            var result = self
            if other.restart < restart { (result.restart, result.restartCPU) = (other.restart, other.restartCPU) }
            result.rollupsReady = min(rollupsReady, other.rollupsReady)
            if other.snapshotFull < snapshotFull {
                (result.snapshotFull, result.snapshotFullCPU) = (other.snapshotFull, other.snapshotFullCPU)
            }
            return result
        }
    }

    static func soak(months: Int, scale: Double, config: String, keep: Bool) throws {
        let domain = try ConfigurationFolder.load(config)
        let folder = NSTemporaryDirectory() + "sameday-bench-soak-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        defer {
            if keep {
                FileHandle.standardError.write(Data("soak: state kept in \(folder)\n".utf8))
            } else {
                try? FileManager.default.removeItem(atPath: folder)
            }
        }
        var settings = WorkerConfiguration()
        settings.stateDirectory = folder
        settings.domainConfig = config
        settings.clock = .events
        settings.metricsListen = ""
        settings.shard = 0
        settings.shards = 1
        let topology = SameDayTopology(shards: 1)
        let queue = topology.workQueue(0)
        let metrics = WorkerMetrics()
        var logger = Logger(label: "sameday.soak")
        logger.logLevel = .warning
        let clock = SystemClock()
        func open(_ directory: String = folder) throws -> ShardLoop {
            var settings = settings
            settings.stateDirectory = directory
            return try ShardLoop(
                configuration: settings, domain: domain, clock: clock, metrics: metrics, logger: logger, queue: queue)
        }
        /// Opens the folder's state, waits for the rollups thread, then takes the full snapshot a restart makes
        /// (every kept day): each timed, wall and process CPU (the rows are read on a helper thread while this one
        /// loads them). The loop is left open.
        func timedRestart(_ directory: String) throws -> (Timed, ShardLoop) {
            // From a heap given back to the system, as a new process starts (and as `restart` times it): a restart
            // after a smaller state's grew the heap, one after a larger state's reused its pages.
            trimMalloc()
            var timed = Timed()
            let started = ContinuousClock.now
            var cpu = processCPUSeconds()
            let shard = try open(directory)
            timed.restart = (ContinuousClock.now - started).seconds
            timed.restartCPU = processCPUSeconds() - cpu
            shard.drainRollups()
            timed.rollupsReady = (ContinuousClock.now - started).seconds
            cpu = processCPUSeconds()
            timed.snapshotFull = try shard.snapshotNow()
            timed.snapshotFullCPU = processCPUSeconds() - cpu
            return (timed, shard)
        }
        // Month 3's state folder, copied at its end: at the last month, its restart and full snapshot are timed again
        // beside the last month's, alternating, so the two are compared in one sitting (a shared machine moves the
        // same work by 1.5 × over a few minutes; a ratio taken minutes apart measures that as much as the state).
        let baseMonth = 3
        let baseCopy = folder + "-month\(baseMonth)"
        try? FileManager.default.removeItem(atPath: baseCopy)
        defer { try? FileManager.default.removeItem(atPath: baseCopy) }
        // The routing key of each unit and event type, as `EventMessage` publishes it.
        var routingKeys: [String: [String: String]] = [:]
        for unit in domain.units {
            var byType: [String: String] = [:]
            for type in EventType.allCases {
                byType[type.name] = SameDayRoutingKey.event(
                    block: unit.block.rawValue, unit: unit.code, type: type.name)
            }
            routingKeys[unit.code] = byType
        }

        let perUnit = max(1, Int((dossiersPerUnitPerDayAtScale1 * scale).rounded()))
        var loop: ShardLoop? = try open()
        var tag: UInt64 = 0
        var carried: [DossierEvent] = []
        var results: [Int: Month] = [:]
        var codesOutsideMonth = 0
        for month in 1...months {
            let first = LocalDate(year: 2022 + (month - 1) / 12, month: (month - 1) % 12 + 1, day: 1)!
            let next = LocalDate(year: 2022 + month / 12, month: month % 12 + 1, day: 1)!
            var stream = monthStream(
                first: first, next: next, perUnit: perUnit, seed: UInt64(month), domain: domain, carried: &carried,
                codesOutsideMonth: &codesOutsideMonth)
            let events = stream.count
            let snapshotsBefore = (
                count: metrics.count(.snapshotSeconds),
                sum: metrics.sum(.snapshotSeconds)
            )
            let before = metrics.value(.deadLettersTotal)
            let duplicatesBefore = metrics.value(.eventsDuplicateTotal)
            guard let shard = loop else { break }
            let fed = ContinuousClock.now
            let fedCPU = (thread: threadCPUSeconds(), process: processCPUSeconds())
            for event in stream {
                tag += 1
                let delivery = Delivery(
                    tag: DeliveryTag(value: tag, channelEpoch: 1), body: Array(event.encoded().utf8),
                    messageID: event.eventId, exchange: "sameday.events",
                    routingKey: routingKeys[event.unit]?[event.type.name] ?? "",
                    headers: [SameDayTopology.shardHeader: .string(event.dossier)])
                shard.handle(delivery)
                try shard.step(consumer: nil, idle: false)
            }
            let feedSeconds = (ContinuousClock.now - fed).seconds
            let feedCPU = (thread: threadCPUSeconds() - fedCPU.thread, process: processCPUSeconds() - fedCPU.process)
            stream = []
            // The month's automatic snapshots (each one what changed since the one before), then the one at its end.
            let snapshots = metrics.count(.snapshotSeconds) - snapshotsBefore.count
            let snapshotMean = (metrics.sum(.snapshotSeconds) - snapshotsBefore.sum) / max(1, snapshots)
            // CPU seconds too: the machine is shared, and wall seconds move with whatever else runs. Nothing else
            // runs meanwhile, so the process's CPU time is that of `snapshotNow`: the last commit, the rollups
            // thread's backlog of changes, then the snapshot (whose own wall seconds it returns).
            let cpu = processCPUSeconds()
            let snapshotSeconds = try shard.snapshotNow()
            let snapshotCPU = processCPUSeconds() - cpu
            let stateBytes = shard.store.bytesOnDisk()
            // What the bytes are: each table and index, the free pages, the log; and the files beside the database
            // (the alert and rollup files are outputs, kept by day).
            let space = try (shard.store as? WorkerStore)?.space() ?? StoreSpace()
            var files: [String: Int64] = [:]
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                files[name] = folderBytes(folder + "/" + name)
            }
            let logEvents = try shard.store.eventCount()
            let tombstones = try shard.store.tombstoneCount()
            var openCount = 0, retained = 0
            for dossier in shard.engine.heldDossiers() {
                if dossier.retirement(config: domain, retainSeconds: settings.retention.closedSeconds) == nil {
                    openCount += 1
                } else {
                    retained += 1
                }
            }
            let held = shard.engine.dossierCount
            // RSS of the running worker at the month's end, once the month's generated events are freed and malloc
            // gave back what it could (`malloc_trim`); the events carried to the next month are still held.
            trimMalloc()
            let rss = residentBytes()

            // Restart: close the loop (its commit and rollups threads), open a new one on the same folder, then the
            // first snapshot after it, which rewrites every kept day (the files may predate the last commits): the
            // most a snapshot costs, bounded by the window, not the history. Three times, the fastest of each
            // reported: on this shared machine one sample of the same work moves by 1.5–2 ×.
            shard.close()
            loop = nil
            if month == baseMonth, months > baseMonth {
                try FileManager.default.copyItem(atPath: folder, toPath: baseCopy)
            }
            var reopened: ShardLoop?
            var timed = Timed()
            for _ in 0..<3 {
                reopened?.close()
                reopened = nil
                let (sample, shard) = try timedRestart(folder)
                reopened = shard
                timed = timed.fastest(sample)
            }
            guard let reopened else { break }
            loop = reopened
            let summary = reopened.restartSummary

            results[month] = Month(
                events: events, seconds: feedSeconds, restart: timed.restart, snapshot: snapshotSeconds,
                snapshotFull: timed.snapshotFull, snapshotMean: snapshotMean, restartCPU: timed.restartCPU,
                snapshotCPU: snapshotCPU, snapshotFullCPU: timed.snapshotFullCPU, stateBytes: stateBytes)
            emit(
                try jsonLine([
                    "month": month, "first_day": first.description, "events": events,
                    "carried_to_next_month": carried.count,
                    "duplicates": Int(metrics.value(.eventsDuplicateTotal) - duplicatesBefore),
                    "dossiers": held, "open_dossiers": openCount, "retained_dossiers": retained,
                    "log_events": logEvents, "tombstones": tombstones, "state_bytes": stateBytes,
                    "snapshot_seconds": rounded(snapshotSeconds, 3),
                    "snapshot_full_seconds": rounded(timed.snapshotFull, 3), "snapshots": Int(snapshots),
                    "snapshot_mean_seconds": rounded(snapshotMean, 3), "restart_seconds": rounded(timed.restart, 3),
                    "restart_with_rollups_seconds": rounded(timed.rollupsReady, 3),
                    "restart_loaded_dossiers": summary.dossiers, "restart_events_replayed": summary.events,
                    "restart_quarantined": summary.quarantined, "rss_bytes": rss,
                    "events_per_s": Int(Double(events) / max(feedSeconds, 1e-9)),
                    "feed_cpu_seconds": rounded(feedCPU.process, 1),
                    "feed_thread_cpu_seconds": rounded(feedCPU.thread, 1),
                    "restart_cpu_seconds": rounded(timed.restartCPU, 3),
                    "snapshot_cpu_seconds": rounded(snapshotCPU, 3),
                    "snapshot_full_cpu_seconds": rounded(timed.snapshotFullCPU, 3),
                    "dead_letters": Int(metrics.value(.deadLettersTotal) - before),
                    "dossier_codes_outside_their_month": codesOutsideMonth,
                    "table_bytes": space.tables, "free_page_bytes": space.freeBytes, "wal_bytes": space.walBytes,
                    "folder_bytes": files,
                ]))
        }
        loop?.close()
        loop = nil

        let compared = months >= 12 ? 12 : months
        // The base month's copy and the last month's folder, restarted in turn (ten rounds, the fastest of each),
        // and the median of the rounds' own ratios: on a shared machine one lucky restart moves the fastest.
        // A restart loads every held dossier and reads the window's tombstones, and the two months hold different
        // numbers of each (month 3's window has Tết in it, and its tombstone window is not yet full): both are
        // printed, and the ratio per held dossier beside the plain one, so growth with history shows apart from
        // a month that simply holds more live work.
        var sameSitting: [String: Double] = [:]
        if months > baseMonth, compared == months {
            var best = (base: Timed(), last: Timed())
            var roundRatios: [Double] = []
            var held = (base: 0, last: 0), tombstones = (base: 0, last: 0)
            for _ in 0..<10 {
                var round = (base: Timed(), last: Timed())
                for (directory, isBase) in [(baseCopy, true), (folder, false)] {
                    let (sample, shard) = try timedRestart(directory)
                    let counts = (shard.restartSummary.dossiers, shard.engine.tombstoneCount)
                    shard.close()
                    if isBase {
                        round.base = sample
                        (held.base, tombstones.base) = counts
                    } else {
                        round.last = sample
                        (held.last, tombstones.last) = counts
                    }
                }
                best = (best.base.fastest(round.base), best.last.fastest(round.last))
                roundRatios.append(round.last.restart / round.base.restart)
            }
            roundRatios.sort()
            let medianRatio = (roundRatios[4] + roundRatios[5]) / 2
            let heldRatio = Double(held.last) / Double(max(1, held.base))
            sameSitting = [
                "restart_median_of_rounds": rounded(medianRatio, 3),
                "held_dossiers_ratio": rounded(heldRatio, 3),
                "restart_per_held_dossier_median_of_rounds": rounded(medianRatio / heldRatio, 3),
                "restart_cpu_per_held_dossier": rounded(best.last.restartCPU / best.base.restartCPU / heldRatio, 3),
                "base_held_dossiers": Double(held.base), "last_held_dossiers": Double(held.last),
                "base_tombstones": Double(tombstones.base), "last_tombstones": Double(tombstones.last),
                "restart": rounded(best.last.restart / best.base.restart, 3),
                "restart_cpu": rounded(best.last.restartCPU / best.base.restartCPU, 3),
                "snapshot_full": rounded(best.last.snapshotFull / best.base.snapshotFull, 3),
                "snapshot_full_cpu": rounded(best.last.snapshotFullCPU / best.base.snapshotFullCPU, 3),
                "base_restart_seconds": rounded(best.base.restart, 3),
                "last_restart_seconds": rounded(best.last.restart, 3),
                "base_snapshot_full_seconds": rounded(best.base.snapshotFull, 3),
                "last_snapshot_full_seconds": rounded(best.last.snapshotFull, 3),
            ]
        }
        if months >= 4, let base = results[baseMonth], let last = results[compared] {
            let restart = last.restart / base.restart
            let snapshot = last.snapshot / base.snapshot
            let state = Double(last.stateBytes) / Double(base.stateBytes)
            let full = last.snapshotFull / base.snapshotFull
            let mean = last.snapshotMean / base.snapshotMean
            emit(
                try jsonLine([
                    "month3_vs_month\(compared)": [
                        "restart": rounded(restart, 3), "snapshot": rounded(snapshot, 3),
                        "state_bytes": rounded(state, 3), "snapshot_full": rounded(full, 3),
                        "snapshot_mean": rounded(mean, 3),
                        "restart_cpu": rounded(last.restartCPU / base.restartCPU, 3),
                        "snapshot_cpu": rounded(last.snapshotCPU / base.snapshotCPU, 3),
                        "snapshot_full_cpu": rounded(last.snapshotFullCPU / base.snapshotFullCPU, 3),
                        "events_per_s": rounded(
                            Double(last.events) / last.seconds / (Double(base.events) / base.seconds), 3),
                    ],
                    // Judged on CPU seconds (wall seconds are noise on a shared machine) and, for snapshots, on the
                    // full one after a restart (every kept day) and the mean over the month's automatic ones: the
                    // month-end snapshot covers only the seconds since the automatic one before it.
                    "within_1_5x":
                        last.restartCPU / base.restartCPU <= 1.5 && last.snapshotFullCPU / base.snapshotFullCPU <= 1.5
                        && mean <= 1.5 && state <= 1.5,
                    "within_1_5x_wall": restart <= 1.5 && full <= 1.5 && mean <= 1.5 && state <= 1.5,
                    "month3_vs_month\(compared)_same_sitting": sameSitting,
                    "scale": scale, "dossiers_per_unit_per_day": perUnit,
                    "dead_letters": Int(metrics.value(.deadLettersTotal)),
                ]))
        }
    }

    /// The month's events in occurrence order: its own events up to its end, and those of earlier months' dossiers
    /// that fall in it (the generator writes each dossier's whole life with its receipt, which may run weeks past
    /// the month's end); events after the month's end are carried to the next month. One stream on the events'
    /// clock, as the unit systems would send it.
    static func monthStream(
        first: LocalDate, next: LocalDate, perUnit: Int, seed: UInt64, domain: Configuration,
        carried: inout [DossierEvent], codesOutsideMonth: inout Int
    ) -> [DossierEvent] {
        let days = Int(next.dayNumber - first.dayNumber)
        let generated = resolvingLeftOpen(
            SyntheticMonth(firstDay: first, days: days, dossiersPerUnitPerDay: perUnit, seed: seed)
                .events(config: domain), seed: seed)
        // A dossier code is never used by two months (a repeat would meet the tombstone of a retired one and be
        // dead-lettered): the generator's codes are `<unit>-<yymmdd of receipt>-<n>`, each with a day of its month.
        let yymmdd = Set((0..<days).map { dayCode(first.adding(days: Int64($0))) })
        for event in generated {
            let parts = event.dossier.split(separator: "-")
            if parts.count < 3 || !yymmdd.contains(String(parts[parts.count - 2])) { codesOutsideMonth += 1 }
        }
        let merged = merge(carried, generated)
        let cut = merged.partitionPoint { $0.occurredAt < next.startInstant }
        carried = Array(merged[cut...])
        return Array(merged[..<cut])
    }

    /// The generator leaves 3.5 % of a month's dossiers open at its end (the demonstration's month ends with work in
    /// hand). Over a year that would be open work piling up for ever, which no unit has: here each of them is
    /// resolved late, 3 to 45 days after its last event, so the open dossiers reach a steady state as in a real city.
    static func resolvingLeftOpen(_ events: [DossierEvent], seed: UInt64) -> [DossierEvent] {
        var rng = SplitMix64(seed: seed ^ 0x5EED_0FF1_CE00_0045)
        var last: [String: DossierEvent] = [:]
        var order: [String] = []
        for event in events {
            if last[event.dossier] == nil { order.append(event.dossier) }
            last[event.dossier] = event
        }
        var late: [DossierEvent] = []
        for code in order {
            let final = last[code]!
            // Left open: still running (received, resumed, rescheduled, transferred) at its last event.
            guard [.received, .feePaid, .supplementReceived, .rescheduled, .transferred].contains(final.type) else {
                continue
            }
            var resolved = final
            resolved.eventId = code + "#late"
            resolved.type = .resolved
            resolved.seq = (final.seq ?? 0) + 1
            resolved.channel = nil
            resolved.newDueAt = nil
            resolved.outcome = .approved
            resolved.occurredAt = final.occurredAt + Int64.random(in: 3...45, using: &rng) * LocalTime.secondsPerDay
            late.append(resolved)
        }
        late.sort { $0.occurredAt < $1.occurredAt }
        return merge(events, late)
    }

    static func dayCode(_ day: LocalDate) -> String {
        let c = day.components
        func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return pad2(c.year % 100) + pad2(c.month) + pad2(c.day)
    }

    /// Two streams in occurrence order, merged (the first one's events first at equal instants).
    static func merge(_ a: [DossierEvent], _ b: [DossierEvent]) -> [DossierEvent] {
        if a.isEmpty { return b }
        var out: [DossierEvent] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if b[j].occurredAt < a[i].occurredAt {
                out.append(b[j]); j += 1
            } else {
                out.append(a[i]); i += 1
            }
        }
        out += a[i...]
        out += b[j...]
        return out
    }

    static func rounded(_ value: Double, _ digits: Int) -> Double {
        let factor = pow(10, Double(digits))
        return (value * factor).rounded() / factor
    }

    /// Bytes of a file, or of every file under a folder.
    static func folderBytes(_ path: String) -> Int64 {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return 0 }
        func size(_ file: String) -> Int64 {
            ((try? FileManager.default.attributesOfItem(atPath: file)[.size]) as? NSNumber)?.int64Value ?? 0
        }
        guard isFolder.boolValue else { return size(path) }
        let files = FileManager.default.subpaths(atPath: path) ?? []
        return files.reduce(0) { $0 + size(path + "/" + $1) }
    }

    /// One line on stdout at once (not held in a buffer while the next month runs).
    static func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    /// glibc's `malloc_trim(0)` (not in Swift's Glibc module): gives freed heap memory back to the system.
    static func trimMalloc() {
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
    }

    /// VmRSS of this process, in bytes.
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return kilobytes * 1024
        }
        return 0
    }
}

extension Array {
    /// The index of the first element for which `belongs` is false, in an array where it is true for a prefix.
    func partitionPoint(_ belongs: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
