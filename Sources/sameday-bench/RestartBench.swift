import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayWorker

/// The state of a worker that had delivered its alerts before it stopped.
private func markDelivered(_ alerts: [OutboxAlert], _ store: WorkerStore) throws {
    try store.markFiled(alerts.map(\.alertID))
    try store.markPublished(alerts.map(\.alertID))
}

/// `sameday-bench restart`: a worker state with N open dossiers, then the time from start to consuming.
struct RestartBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Time from worker start to consuming, with N open dossiers in its state.")

    @Option(help: "Open dossiers in the state.") var dossiers = 1_000_000
    @Option(
        help:
            "Events committed after the rows' last save, as a SIGKILL between saves leaves them: the restart replays them from the log (each opens one more dossier; at most 20,000 in a worker)."
    )
    var unsavedEvents = 0
    @Option(
        help:
            "Restarts of the same state, one after the other; the quickest is reported, with each (one with --unsaved-events)."
    )
    var restarts = 3
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Broker URL (loopback only, no password).") var url = localBrokerURL

    func validate() throws {
        try refusePassword(inURL: url)
        guard restarts >= 1 else { throw ValidationError("--restarts must be at least 1") }
    }

    func run() async throws {
        let domain = try ConfigurationFolder.load(config)
        let folder = NSTemporaryDirectory() + "sameday-bench-restart-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let topology = SameDayTopology(shards: 1, namePrefix: "bench.restart.\(getpid()).")
        let settings = benchWorkerSettings(url: url, topology: topology, folder: folder, config: config)

        let fillStart = ContinuousClock.now
        // The fill's engine and store are gone before the first restart: freeing a million dossiers took a core
        // for half a second, inside the restart's time.
        let open = try fill(settings: settings, domain: domain)
        let fillSeconds = (ContinuousClock.now - fillStart).seconds
        // Each restart starts from a heap given back to the system, as a new process does: reusing the pages freed
        // by the fill (or the restart before) made a restart a fifth quicker than a new process.
        SoakBench.trimMalloc()

        let connection = ConnectionConfiguration(
            brokers: [try BrokerURL(parsing: url)], connectionName: "bench restart")
        try await onBroker(connection) { try topology.topology.declare(on: $0) }
        var restarts: [Double] = []
        var rebuilds: [Double] = []
        // Only the first restart replays the unsaved events (it saves their rows): with them, one restart is run.
        for _ in 0..<(unsavedEvents > 0 ? 1 : self.restarts) {
            let metrics = WorkerMetrics()
            let stop = StopFlag()
            let workerSettings = settings
            let started = ContinuousClock.now
            async let worker: Void = BlockingThread.run(name: "bench worker") {
                try WorkerService(configuration: workerSettings, domain: domain, metrics: metrics).run(until: stop)
            }
            while !metrics.readiness.ready {
                if ContinuousClock.now - started > .seconds(300) { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            restarts.append((ContinuousClock.now - started).seconds)
            rebuilds.append(metrics.value(.rebuildSeconds))
            stop.request()
            try await worker
            SoakBench.trimMalloc()
        }
        try await onBroker(connection) { try topology.topology.delete(on: $0) }
        func hundredths(_ v: Double) -> Double { (v * 100).rounded() / 100 }
        print(
            try jsonLine([
                "bench": "restart", "open_dossiers": open, "unsaved_events": unsavedEvents,
                // The quickest of the restarts: the machine's noise only ever adds time.
                "restart_to_consuming_s": hundredths(restarts.min()!),
                "restart_to_consuming_s_each": restarts.map(hundredths),
                "rebuild_s": hundredths(rebuilds.min()!),
                "fill_s": (fillSeconds * 10).rounded() / 10,
            ]))
    }

    /// Builds the state: one `received` per dossier, spread over a working day, committed in large batches; the
    /// dossiers held.
    private func fill(settings: WorkerConfiguration, domain: Configuration) throws -> Int {
        let store = try WorkerStore(path: settings.databasePath)
        let engine = WorkerEngine(configuration: domain, store: store, clockMode: .events)
        let day = LocalDate(year: 2022, month: 5, day: 18)!.startInstant + 8 * 3600
        let procedure = domain.catalog.first { $0.sla == .sameDay }?.procedure ?? domain.catalog[0].procedure
        for index in 0..<(dossiers + unsavedEvents) {
            if index == dossiers {
                // The rows are saved; what follows is committed as the consume loop commits between saves.
                try markDelivered(try engine.commit(), store)
                engine.rowSaving = RowSaving(
                    maxDossiers: .max, maxEvents: .max, maxInterval: .seconds(86_400), maxClockSeconds: .max)
            }
            let unit = domain.units[index % domain.units.count].code
            let event = DossierEvent(
                eventId: "r-\(index)", dossier: "\(unit)-220518-\(index)", unit: unit, procedure: procedure,
                type: .received, occurredAt: day + Int64(index % 28_800), seq: nil, channel: .direct, outcome: nil,
                newDueAt: nil, source: "bench")
            try engine.apply(event)
            if index >= dossiers {
                if index % 1_000 == 999 { try markDelivered(try engine.commitPrepared()?.alerts ?? [], store) }
            } else if index % 50_000 == 49_999 {
                try markDelivered(try engine.commit(), store)
            }
        }
        if unsavedEvents == 0 {
            try markDelivered(try engine.commit(), store)
        } else {
            try markDelivered(try engine.commitPrepared()?.alerts ?? [], store)
        }
        return engine.dossierCount
    }
}
