import Dispatch
import Foundation
import SameDayCore
import SameDayFiles
import SameDayStore
import Synchronization

/// Writes group commits on a thread of its own, so decoding and applying the next batch overlaps the fsync of the
/// previous one; the consume thread acks a batch only once its commit is done (ack after commit). One commit is in
/// flight at a time. Between commits it prunes retention slices (the event log, tombstones, delivered alerts), so
/// that work never runs on the consume thread nor holds a commit up for long.
final class CommitThread: Sendable {
    struct Horizons: Sendable {
        var eventsBefore: Instant
        var tombstonesBefore: Instant
        var alertsBeforeDay: String
    }
    private struct State {
        var submitted: PreparedCommit?
        var result: Result<PreparedCommit, any Error>?
        var prune: Horizons?
        var stopping = false
        var pruned = 0
        /// The store refused the commit in flight for a reason that may pass (a full disk): why, and since when.
        var retrying: (reason: String, since: ContinuousClock.Instant)?
        /// A graceful stop was asked for: a failing commit is retried only `retryAfterStop` longer.
        var stopAskedAt: ContinuousClock.Instant?
    }
    /// How long a commit that keeps failing is retried once a stop was asked for: the process must end.
    static let retryAfterStop: Duration = .seconds(10)
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(store: any ShardStore, metrics: WorkerMetrics) {
        NamedThread.start("sameday.commit") { [self] in run(store: store, metrics: metrics) }
    }

    private func run(store: any ShardStore, metrics: WorkerMetrics) {
        while true {
            wake.wait()
            let (job, prune, stop) = state.withLock { s in (s.submitted, s.prune, s.stopping) }
            if let job {
                let result = commitRetrying(job, store: store, metrics: metrics)
                state.withLock { s in
                    s.submitted = nil
                    s.retrying = nil
                    s.result = result
                }
                metrics.set(.storeRetrying, 0)
                done.signal()
            } else if stop {
                break
            } else if let prune {
                // One slice; ask for the next only while slices come back full.
                let removed =
                    (try? store.prune(
                        eventsBefore: prune.eventsBefore, tombstonesBefore: prune.tombstonesBefore,
                        alertsBeforeDay: prune.alertsBeforeDay, limit: 2000)) ?? PruneResult()
                metrics.increment(.prunedRowsTotal, by: removed.total)
                let more = removed.events == 2000 || removed.tombstones == 2000 || removed.alerts == 2000
                state.withLock { s in
                    s.pruned += removed.total
                    if !more { s.prune = nil }
                }
                if more { wake.signal() }
            }
        }
        finished.signal()
    }

    /// Writes the commit; a failure the store calls transient (a full disk, a read-only device) is retried with
    /// backoff (0.5 s doubling to 30 s) until the write succeeds, so nothing is acked, and nothing handed back to
    /// the broker, while the store cannot write. The batch is the same each time: the failed transaction was rolled
    /// back whole.
    private func commitRetrying(_ job: PreparedCommit, store: any ShardStore, metrics: WorkerMetrics)
        -> Result<PreparedCommit, any Error>
    {
        var job = job
        job.encodeAlerts()
        var delay: Duration = .milliseconds(500)
        while true {
            let started = ContinuousClock.now
            do {
                try store.commit(job.batch)
                metrics.observeCommit(seconds: (ContinuousClock.now - started).secondsValue)
                job.releaseWritten()
                return .success(job)
            } catch {
                let stopAskedAt = state.withLock { $0.stopAskedAt }
                guard store.isTransient(error),
                    stopAskedAt.map({ ContinuousClock.now - $0 < Self.retryAfterStop }) ?? true
                else { return .failure(error) }
                metrics.increment(.storeWriteFailuresTotal)
                metrics.set(.storeRetrying, 1)
                state.withLock { s in s.retrying = (reason: "\(error)", since: s.retrying?.since ?? .now) }
                // After a stop was asked for, try again every second until `retryAfterStop` is spent.
                let until = ContinuousClock.now + (stopAskedAt == nil ? delay : .seconds(1))
                while ContinuousClock.now < until, stopAskedAt != nil || state.withLock({ $0.stopAskedAt == nil }) {
                    Thread.sleep(forTimeInterval: 0.05)
                }
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    /// Why the commit in flight is being retried, and since when (nil while the store writes).
    var retrying: (reason: String, since: ContinuousClock.Instant)? { state.withLock { $0.retrying } }

    /// A graceful stop: a commit that keeps failing is given up after `retryAfterStop`.
    func stopRetrying() { state.withLock { s in s.stopAskedAt = s.stopAskedAt ?? .now } }

    /// Hands a commit over; the previous one must have been collected.
    func submit(_ commit: PreparedCommit) {
        state.withLock { s in
            precondition(s.submitted == nil && s.result == nil, "one commit in flight at a time")
            s.submitted = commit
        }
        wake.signal()
    }

    /// The finished commit, if any; with `wait`, blocks until the one in flight is done.
    func collect(wait: Bool) -> Result<PreparedCommit, any Error>? {
        // The consume thread asks after every delivery: look under the lock rather than try the semaphore, whose
        // zero-timeout wait is a futex call each time. A result set is signalled at once, so the wait below is short.
        if !wait, state.withLock({ $0.result == nil }) { return nil }
        done.wait()
        return state.withLock { s in
            defer { s.result = nil }
            return s.result
        }
    }

    /// Asks for retention pruning up to these horizons (done in slices between commits).
    func prune(_ horizons: Horizons) {
        state.withLock { $0.prune = horizons }
        wake.signal()
    }

    var prunedRows: Int { state.withLock { $0.pruned } }

    func finish() {
        state.withLock { $0.stopping = true }
        wake.signal()
        finished.wait()
    }
}
