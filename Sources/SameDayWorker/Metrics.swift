import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The worker's metrics: swift-metrics instruments (`Counter`, `FloatingPointCounter`, `Gauge`, `Timer`) backed by a
/// swift-prometheus registry that this instance owns. Nothing goes through the global `MetricsSystem.bootstrap`, so a
/// process (a test, a benchmark) may hold as many `WorkerMetrics` as it likes, each with its own numbers.
///
/// Callers name a metric and, for a labelled one, pass the Prometheus label text (`{level="warning"}`); the first
/// use of a name fixes its type (counter, gauge or histogram) and whether it carries labels. A later use that does
/// not fit (a `set` of a counter, a labelled use of an unlabelled name) is ignored rather than allowed to produce an
/// exposition Prometheus would reject. Written by the worker's threads, read by the HTTP server's.
public final class WorkerMetrics: Sendable {
    /// The registry `render()` reads; other code may register its own collectors here.
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory bound to `registry` (help texts and histogram buckets of `WorkerMetrics`), for code
    /// that wants its own swift-metrics instruments next to the worker's: `Counter(label: …, factory: m.factory)`.
    public let factory: WorkerMetricsFactory

    private enum Kind: Equatable {
        case counter, gauge, histogram
    }

    private struct Family {
        var kind: Kind
        var labelled: Bool
    }

    private struct State {
        var families: [String: Family] = [:]
        var counters: [String: CoreMetrics.Counter] = [:]
        var fractionalCounters: [String: FloatingPointCounter] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
        var timers: [String: CoreMetrics.Timer] = [:]
        /// The numbers `value(_:)` answers with, by name and label text: counter totals, gauge values, and a
        /// histogram's `<name>_count` and `<name>_sum`.
        var values: [String: Double] = [:]
        var ready = false
        var notReadyReason = "starting"
    }
    private let state = Mutex(State())
    private let readyGauge: CoreMetrics.Gauge

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        factory = WorkerMetricsFactory(registry: registry)
        readyGauge = CoreMetrics.Gauge(label: "sameday_ready", factory: factory)
        readyGauge.record(0)
        state.withLock {
            $0.families["sameday_ready"] = Family(kind: .gauge, labelled: false)
            $0.values["sameday_ready"] = 0
        }
    }

    /// Adds `value` to the counter `name` (counters only go up: a negative or non-finite amount is ignored).
    public func increment(_ name: String, by value: Double = 1, labels: String = "") {
        guard value.isFinite, value >= 0 else { return }
        let key = name + labels
        state.withLock { state in
            if value == value.rounded(), value < 9e18 {
                // Whole amounts stay integers in the exposition (`sameday_events_total 123`, not `123.0`).
                guard let counter = instrument(key, .counter, \.counters, &state, make: CoreMetrics.Counter.init)
                else { return }
                counter.increment(by: Int64(value))
            } else {
                guard
                    let counter = instrument(
                        key, .counter, \.fractionalCounters, &state, make: FloatingPointCounter.init)
                else { return }
                counter.increment(by: value)
            }
            state.values[key, default: 0] += value
        }
    }

    /// Sets the gauge `name`.
    public func set(_ name: String, _ value: Double, labels: String = "") {
        let key = name + labels
        state.withLock { state in
            guard let gauge = instrument(key, .gauge, \.gauges, &state, make: CoreMetrics.Gauge.init) else { return }
            gauge.record(value)
            state.values[key] = value
        }
    }

    /// Records one duration, in seconds, in the histogram `name` (`<name>_bucket{le=…}`, `<name>_sum`,
    /// `<name>_count`): `sameday_snapshot_seconds`, `sameday_restart_seconds`, …
    public func observe(_ name: String, seconds: Double, labels: String = "") {
        guard seconds.isFinite else { return }
        let seconds = max(0, seconds)
        let key = name + labels
        state.withLock { state in
            guard let timer = instrument(key, .histogram, \.timers, &state, make: CoreMetrics.Timer.init) else {
                return
            }
            timer.recordSeconds(seconds)
            let (family, labelText) = Self.split(key)
            state.values[family + "_count" + labelText, default: 0] += 1
            state.values[family + "_sum" + labelText, default: 0] += seconds
        }
    }

    /// One group commit's duration: the histogram `sameday_commit_seconds`.
    public func observeCommit(seconds: Double) {
        observe("sameday_commit_seconds", seconds: seconds)
    }

    /// Ready means consuming; not ready (broker down, rebuilding) is still alive.
    public func setReady(_ ready: Bool, reason: String = "") {
        state.withLock {
            $0.ready = ready
            $0.notReadyReason = reason
            $0.values["sameday_ready"] = ready ? 1 : 0
            readyGauge.record(ready ? 1 : 0)
        }
    }

    public var readiness: (ready: Bool, reason: String) { state.withLock { ($0.ready, $0.notReadyReason) } }

    /// The current number of a counter or gauge (name and label text as given to `increment`/`set`), or of a
    /// histogram's `<name>_count` / `<name>_sum`; 0 for a name never used.
    public func value(_ name: String) -> Double { state.withLock { $0.values[name] ?? 0 } }

    /// The Prometheus text exposition (format 0.0.4): `# HELP` and `# TYPE` for every metric, families in name order.
    public func render() -> String {
        Self.sortedByFamily(registry.emitToString())
    }

    // MARK: - Names and labels

    /// Checks `key` (name plus label text) against what its family already is; registers the family on first use.
    /// The instrument of `key` in `table`, made on first use if the name admits that kind (nil: the use is ignored).
    private func instrument<Instrument>(
        _ key: String, _ kind: Kind, _ table: WritableKeyPath<State, [String: Instrument]>, _ state: inout State,
        make: (String, [(String, String)], any MetricsFactory) -> Instrument
    ) -> Instrument? {
        if let existing = state[keyPath: table][key] { return existing }
        guard let metric = admit(key, kind, &state) else { return nil }
        let made = make(metric.family, metric.dimensions, factory)
        state[keyPath: table][key] = made
        return made
    }

    private func admit(_ key: String, _ kind: Kind, _ state: inout State) -> (
        family: String, dimensions: [(String, String)]
    )? {
        let (family, labelText) = Self.split(key)
        let dimensions = Self.parseLabels(labelText)
        let wanted = Family(kind: kind, labelled: !dimensions.isEmpty)
        if let known = state.families[family] {
            guard known.kind == wanted.kind, known.labelled == wanted.labelled else { return nil }
        } else {
            state.families[family] = wanted
        }
        return (family, dimensions)
    }

    /// `sameday_alerts_total{level="warning"}` → (`sameday_alerts_total`, `{level="warning"}`).
    static func split(_ key: String) -> (family: String, labels: String) {
        guard let brace = key.firstIndex(of: "{") else { return (key, "") }
        return (String(key[..<brace]), String(key[brace...]))
    }

    /// Prometheus label text, `{a="x",b="y \"quoted\""}`, as pairs in their order. Lenient: stops at the first thing
    /// that is not `name="value"`, keeping what came before.
    static func parseLabels(_ text: String) -> [(String, String)] {
        var pairs: [(String, String)] = []
        var chars = Substring(text.trimmingCharacters(in: .whitespaces))
        if chars.first == "{" { chars = chars.dropFirst() }
        if chars.last == "}" { chars = chars.dropLast() }
        var rest = chars[...]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { return pairs }
            let name = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...].drop { $0 == " " }
            guard !name.isEmpty, rest.first == "\"" else { return pairs }
            rest = rest.dropFirst()
            var value = ""
            var closed = false
            var escaped = false
            var index = rest.startIndex
            while index < rest.endIndex {
                let c = rest[index]
                index = rest.index(after: index)
                if escaped {
                    value.append(c == "n" ? "\n" : c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    closed = true
                    break
                } else {
                    value.append(c)
                }
            }
            guard closed else { return pairs }
            pairs.append((name, value))
            rest = rest[index...]
        }
    }

    /// The registry emits families in hash order; put them in name order (the lines of one family stay together and
    /// in their order: a histogram's buckets ascend), and a counter's or gauge's labelled lines in text order.
    static func sortedByFamily(_ text: String) -> String {
        var families: [(name: String, header: [Substring], samples: [Substring], sortSamples: Bool)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# ") {
                let words = line.split(separator: " ", maxSplits: 3)
                let name = words.count > 2 ? String(words[2]) : ""
                if families.last?.name != name { families.append((name, [], [], true)) }
                families[families.count - 1].header.append(line)
                if words.count > 3, words[1] == "TYPE", words[3] == "histogram" {
                    families[families.count - 1].sortSamples = false
                }
            } else if families.isEmpty {
                families.append(("", [], [line], false))
            } else {
                families[families.count - 1].samples.append(line)
            }
        }
        var out = ""
        for family in families.sorted(by: { $0.name < $1.name }) {
            for line in family.header { out += line + "\n" }
            for line in family.sortSamples ? family.samples.sorted() : family.samples { out += line + "\n" }
        }
        return out
    }

    // MARK: - Help texts and buckets

    /// The `# HELP` text of each metric the worker writes; a name missing here still gets a help line that says so.
    public static let help: [String: String] = [
        "sameday_events_total": "Events applied to dossiers and committed (each one acked after its commit).",
        "sameday_events_duplicate_total": "Deliveries whose event id was already applied; they changed nothing.",
        "sameday_dead_letters_total":
            "Deliveries refused and dead-lettered to sameday.dead (the reason is in x-sameday-reason).",
        "sameday_refusals_total":
            "Deliveries dead-lettered, by refusal code (x-sameday-refusal; docs/worker.md lists them).",
        "sameday_unit_dossiers_fullest_ratio":
            "Dossiers held by the fullest unit over maxDossiersPerUnit; at 1 its new dossiers are dead-lettered.",
        "sameday_alerts_total": "SLA alerts raised, by level.",
        "sameday_dossiers": "Dossiers the worker holds in its state.",
        "sameday_clock_seconds":
            "The worker's clock (wall, or the newest occurredAt on the events clock), Unix seconds.",
        "sameday_event_lag_seconds": "Wall clock minus the occurredAt of the newest event applied, in seconds.",
        "sameday_rebuild_seconds": "Seconds the last start spent loading the state before consuming.",
        "sameday_quarantined_events_total":
            "Stored dossier rows (or an older state folder's events) that could not be read back at a restart, set aside.",
        "sameday_clock_jumps_refused_total": "Wall-clock readings refused for jumping beyond maxClockJumpSeconds.",
        "sameday_outbox_in_flight": "Alerts and dead letters published to the broker and not yet confirmed.",
        "sameday_commit_seconds": "Duration of one group commit (one SQLite or PostgreSQL transaction), in seconds.",
        "sameday_snapshot_seconds":
            "Duration of one rollup snapshot (the days touched since the last one), in seconds.",
        "sameday_restart_seconds": "Duration of a start, from opening the state to consuming, in seconds.",
        "sameday_ready":
            "1 while consuming; 0 while starting, rebuilding, stopping or away from the broker (see /readyz).",
        "sameday_dossiers_retired_total": "Closed dossiers retired from the state after retainClosedDays.",
        "sameday_retired_dossier_events_total":
            "Events for retired dossiers, dead-lettered with the reason \"dossier retired\".",
        "sameday_pruned_rows_total":
            "Rows pruned by retention: event log rows and tombstones after eventLogDays, delivered alerts likewise.",
        "sameday_rollup_files_written_total": "Daily rollup files rewritten because their figures changed.",
        "sameday_consumer_errors_total": "Errors the consumer met (each followed by a reconnect or a stop).",
        "sameday_consumer_reconnects_total": "Times the consumer connection was opened again after a loss.",
        "sameday_lease_held":
            "1 while this worker holds its shard's lease (PostgreSQL store); 0 on a standby, which consumes nothing.",
        "sameday_lease_takeovers_total": "Times this worker took its shard's lease (its start, or a takeover).",
        "sameday_takeover_seconds":
            "Seconds from taking the lease to consuming: the shard's state loaded and the missed timers fired.",
        "sameday_sources_events_total":
            "sameday sources: events read from the events stream and counted for their unit's last event.",
        "sameday_sources_refusals_total":
            "Stream deliveries passed over by sameday sources, by refusal code (the worker dead-letters the same).",
        "sameday_sources_invalid_events_total":
            "sameday sources: stream deliveries refused (undecodable, unknown unit, routing key or time out of bounds); counted and logged, never stopping the service.",
        "sameday_sources_skipped_deliveries_total":
            "sameday sources: stream deliveries at or below the offset already consumed (read again after a reconnect).",
        "sameday_sources_units": "sameday sources: units that have sent at least one event.",
        "sameday_sources_offset": "sameday sources: the newest events-stream offset committed.",
    ]

    static func helpText(_ name: String) -> String {
        help[name] ?? "\(name) (a SameDay worker metric; add its description to WorkerMetrics.help)"
    }

    /// Histogram buckets, in seconds: fine ones for a commit, a wide range (10 ms to 10 min) for the rest.
    static func buckets(_ name: String) -> [Double] {
        name == "sameday_commit_seconds"
            ? [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
            : [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
    }
}

/// swift-metrics' factory protocol over one swift-prometheus registry, with the `# HELP` texts of `WorkerMetrics.help`
/// and its histogram buckets (swift-prometheus' own `PrometheusMetricsFactory` registers every metric without help).
public struct WorkerMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: WorkerMetrics.helpText(label))
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)])
        -> any FloatingPointCounterHandler
    {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        aggregate
            ? registry.makeValueHistogram(
                descriptor: descriptor(label), labels: dimensions, buckets: WorkerMetrics.buckets(label))
            : registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions,
            buckets: WorkerMetrics.buckets(label).map { .nanoseconds(Int64(($0 * 1e9).rounded())) })
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
