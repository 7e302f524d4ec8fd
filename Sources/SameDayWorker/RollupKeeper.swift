import Foundation
import SameDayCore
import SameDayFiles
import SameDayFormats
import SameDayStore
import Synchronization

/// The worker's daily rollup files, kept up to date from dossier changes (`RollupLedger`): a snapshot renders and
/// writes only the days whose figures moved since the last one, so it costs what changed, not the history.
public final class RollupKeeper {
    public let configuration: Configuration
    public let root: String
    private var facts: DossierFactsByCode = [:]
    private var ledger: RollupLedger
    /// Digests of the files written, per day (days that leave the window are forgotten: never rewritten).
    private var written: [Int64: [String: Int]] = [:]

    public init(configuration: Configuration, root: String, windowDays: Int, retiredStock: [RollupCell: Int] = [:]) {
        self.configuration = configuration
        self.root = root
        self.ledger = RollupLedger(config: configuration, windowDays: windowDays, retiredStock: retiredStock)
    }

    /// The dossiers held at start; every kept day will be checked against its files at the first snapshot (they may
    /// predate the last commits before a crash).
    public func load(_ dossiers: [Dossier]) {
        // Room for them all at once: grown one insert at a time, a million dossiers cost twenty rehashes, half of
        // the load's time.
        facts.reserveCapacity(facts.count + dossiers.count)
        for dossier in dossiers {
            if let f = dossier.facts(config: configuration) { facts[dossier.code] = f }
        }
        restarted = true
    }
    private var restarted = false

    /// The engine clock's day as of the last changes applied: the window moves with it, not with a clock that
    /// may be ahead of the changes still on their way (a commit in flight), so a day never leaves the window
    /// before the changes that reach it have landed.
    private var changesClockDay: Int64?

    /// Follows the changes of one commit; `clock` is the engine clock it was committed at.
    public func apply(_ changes: [RollupChange], clock: Instant? = nil) {
        if let clock {
            changesClockDay = max(changesClockDay ?? LocalTime.day(of: clock), LocalTime.day(of: clock))
        }
        // Days the events reached are kept before their changes land (from the facts as they were).
        var first: Int64?, last: Int64?
        for case .changed(let dossier, let since) in changes {
            first = min(first ?? since, since)
            if let at = dossier.lastEventAt { last = max(last ?? since, LocalTime.day(of: at)) }
        }
        if let first, let last {
            ledger.extend(through: last, firstDay: first) { facts.values }
        }
        for change in changes {
            switch change {
            case .changed(let dossier, let since):
                // One lookup of the code, not two.
                let new = dossier.facts(config: configuration)
                let old =
                    if let new { facts.updateValue(new, forKey: dossier.code) } else {
                        facts.removeValue(forKey: dossier.code)
                    }
                ledger.change(from: old, to: new, since: since)
            case .retired(let code, let abandonedIn):
                if facts.removeValue(forKey: code) != nil { ledger.retire(abandonedIn: abandonedIn) }
            }
        }
    }

    public struct Snapshot: Sendable {
        public var days = 0
        public var files = 0
        public var seconds = 0.0
    }

    /// Brings the kept days to `firstDay…lastDay` (within the window back from `clockDay`) and writes the files of
    /// every day that changed, each atomically; a file whose bytes are unchanged is not rewritten. `mayWrite` is
    /// asked before each file replaces the last: a worker frozen in the middle of a snapshot and resumed after its
    /// lease expired writes nothing more over the new holder's files.
    @discardableResult
    public func snapshot(
        firstDay: Int64?, lastDay: Int64?, clockDay: Int64, mayWrite: () -> Bool = { true }
    ) throws -> Snapshot {
        let started = ContinuousClock.now
        guard let firstDay, let lastDay else { return Snapshot() }
        ledger.cover(
            firstDay: firstDay, lastDay: max(lastDay, clockDay), clockDay: min(clockDay, changesClockDay ?? clockDay)
        ) {
            facts.values
        }
        if restarted {
            ledger.markAllChanged()
            restarted = false
        }
        var result = Snapshot()
        for (day, rollup) in ledger.takeChanged() {
            result.days += 1
            result.files += try RollupFiles.write(
                rollup, date: LocalDate(dayNumber: day), root: root, written: &written[day, default: [:]],
                mayWrite: mayWrite)
            guard mayWrite() else { break }
        }
        if let low = ledger.keptDays?.lowerBound {
            for day in written.keys where day < low { written[day] = nil }
        }
        result.seconds = (ContinuousClock.now - started).secondsValue
        return result
    }

    /// Dossiers whose facts the keeper holds.
    public var dossierCount: Int { facts.count }
}

/// The worker's files thread: runs a `RollupKeeper` and appends committed alerts to the daily alert files, so
/// rendering, writing and fsyncing files never holds the thread that owns the consumer connection (issue "nothing
/// stalls the consume thread past the heartbeat"). Jobs run in order; filed alert ids come back through
/// `takeFiled()`, to be marked in the next commit.
public final class RollupThread: Sendable {
    private enum Job: @unchecked Sendable {
        case load([Dossier])
        case changes([RollupChange], clock: Instant?)
        case snapshot(firstDay: Int64?, lastDay: Int64?, clockDay: Int64)
        case alerts([OutboxAlert])
        case markSimulated
    }
    private struct State {
        var jobs: [Job] = []
        var busy = false
        var stopping = false
        var error: String?
        var snapshots = 0
        var lastSnapshotSeconds = 0.0
        var filed: [String] = []
        /// A job failed and is being retried (a full disk, a read-only folder): why, and since when.
        var retrying: (reason: String, since: ContinuousClock.Instant)?
        var stopAskedAt: ContinuousClock.Instant?
        /// Jobs not yet done, the one running included.
        var backlog: Int { jobs.count + (busy ? 1 : 0) }
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let idle = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(keeper: RollupKeeper, alertFiles: AlertFileSink, metrics: WorkerMetrics) {
        nonisolated(unsafe) let keeper = keeper
        nonisolated(unsafe) let alertFiles = alertFiles
        NamedThread.start("sameday.rollups") { [self] in run(keeper: keeper, alertFiles: alertFiles, metrics: metrics) }
    }

    private func run(keeper: RollupKeeper, alertFiles: AlertFileSink, metrics: WorkerMetrics) {
        while true {
            wake.wait()
            let next: Job? = state.withLock { s in
                if s.jobs.isEmpty { return nil }
                s.busy = true
                return s.jobs.removeFirst()
            }
            guard let job = next else {
                let stop = state.withLock { $0.stopping }
                if stop { break }
                continue
            }
            // A failing job is retried with backoff until it succeeds: the files are rebuilt from what is
            // committed, so waiting loses nothing, while the worker commits no more until they write again.
            var delay: Duration = .milliseconds(500)
            while true {
                do {
                    try perform(job, keeper: keeper, alertFiles: alertFiles, metrics: metrics)
                    state.withLock { $0.retrying = nil }
                    break
                } catch {
                    let stopAskedAt = state.withLock { $0.stopAskedAt }
                    if let stopAskedAt, ContinuousClock.now - stopAskedAt >= CommitThread.retryAfterStop {
                        state.withLock { $0.error = "\(error)" }
                        break
                    }
                    metrics.increment(.fileWriteFailuresTotal)
                    state.withLock { s in s.retrying = (reason: "\(error)", since: s.retrying?.since ?? .now) }
                    Thread.sleep(forTimeInterval: (stopAskedAt == nil ? delay : .seconds(1)).secondsValue)
                    delay = min(delay * 2, .seconds(30))
                }
            }
            let drained = state.withLock { s in
                s.busy = false
                return s.jobs.isEmpty
            }
            if drained { idle.signal() }
        }
        finished.signal()
    }

    private func perform(_ job: Job, keeper: RollupKeeper, alertFiles: AlertFileSink, metrics: WorkerMetrics) throws {
        switch job {
        case .load(let dossiers): keeper.load(dossiers)
        case .changes(let changes, let clock): keeper.apply(changes, clock: clock)
        case .markSimulated:
            guard alertFiles.mayWrite() else { return }
            try RollupFiles.markSimulated(root: keeper.root)
        case .alerts(let alerts):
            let filed = try alertFiles.write(alerts)
            state.withLock { $0.filed += filed }
        case .snapshot(let first, let last, let clockDay):
            // A worker that lost its lease must not overwrite the new holder's files with an older state.
            guard alertFiles.mayWrite() else { return }
            let result = try keeper.snapshot(
                firstDay: first, lastDay: last, clockDay: clockDay, mayWrite: alertFiles.mayWrite)
            metrics.observe(.snapshotSeconds, seconds: result.seconds)
            metrics.increment(.rollupFilesWrittenTotal, by: result.files)
            state.withLock {
                $0.snapshots += 1
                $0.lastSnapshotSeconds = result.seconds
            }
        }
    }

    /// A graceful stop: a job that keeps failing is given up after `CommitThread.retryAfterStop`.
    func stopRetrying() { state.withLock { s in s.stopAskedAt = s.stopAskedAt ?? .now } }

    private func enqueue(_ job: Job) {
        state.withLock { $0.jobs.append(job) }
        wake.signal()
    }

    public func load(_ dossiers: [Dossier]) { enqueue(.load(dossiers)) }
    func file(_ alerts: [OutboxAlert]) { if !alerts.isEmpty { enqueue(.alerts(alerts)) } }

    /// Whether alert ids were appended to the files since the last `takeFiled()`.
    var hasFiled: Bool { state.withLock { !$0.filed.isEmpty } }

    /// Alert ids appended to the files since the last call.
    func takeFiled() -> [String] {
        state.withLock { s in
            defer { s.filed.removeAll(keepingCapacity: true) }
            return s.filed
        }
    }
    public func apply(_ changes: [RollupChange], clock: Instant?) { enqueue(.changes(changes, clock: clock)) }
    /// The rollups folder holds figures of simulated events (`SimulatedData.markerFile`).
    public func markSimulated() { enqueue(.markSimulated) }
    public func snapshot(firstDay: Int64?, lastDay: Int64?, clockDay: Int64) {
        enqueue(.snapshot(firstDay: firstDay, lastDay: lastDay, clockDay: clockDay))
    }

    /// Jobs not yet done (a snapshot is not asked for again while one waits).
    public var backlog: Int { state.withLock { $0.backlog } }
    public var snapshotsDone: Int { state.withLock { $0.snapshots } }
    public var lastSnapshotSeconds: Double { state.withLock { $0.lastSnapshotSeconds } }

    /// The error of a job given up after a stop was asked for, if any: the stop reports it.
    public var failure: String? { state.withLock { $0.error } }

    /// What the consume thread checks after every delivery (a job retried, the queue, a job given up), read under
    /// one lock: three reads of a lock this thread writes were 1.4 % of that thread's time.
    struct Condition {
        /// Why a file job is being retried, and since when (nil while the files write).
        var retrying: (reason: String, since: ContinuousClock.Instant)?
        var backlog: Int
        var failure: String?
    }
    var condition: Condition {
        state.withLock { s in
            Condition(retrying: s.retrying, backlog: s.backlog, failure: s.error)
        }
    }

    /// Waits until every job so far is done.
    public func drain() {
        while backlog > 0 { _ = idle.wait(timeout: .now() + .milliseconds(50)) }
    }

    /// Finishes the jobs in hand, then ends the thread.
    public func finish() {
        drain()
        state.withLock { $0.stopping = true }
        wake.signal()
        finished.wait()
    }
}
