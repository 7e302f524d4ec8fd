import Foundation
import Logging
import SameDayCore
import Synchronization

/// The wall clock, refusing jumps. A system clock that jumps forward once (a wrong NTP step, an operator's typo)
/// would move the worker's clock for good and fire every alert up to the new time at once. This clock follows the
/// wall clock while it agrees, within `maxJumpSeconds`, with the time elapsed on the monotonic clock since the last
/// reading; beyond that it keeps counting monotonic time from the last agreed reading, and reports the refusal.
/// A restart adopts the wall clock as it is (an operator who corrected the time restarts the worker).
public final class GuardedWallClock: WorkerClock {
    private struct Anchor {
        var wall: Instant
        var monotonic: ContinuousClock.Instant
    }
    private let base: any WorkerClock
    private let monotonic: @Sendable () -> ContinuousClock.Instant
    public let maxJumpSeconds: Int64
    private let anchor = Mutex<Anchor?>(nil)
    private let onRefusal: @Sendable (_ wall: Instant, _ kept: Instant) -> Void

    /// - Parameters:
    ///   - monotonic: injected for tests; the process's monotonic clock by default.
    ///   - onRefusal: called (on the reading thread) for every reading whose wall time was refused.
    public init(
        base: any WorkerClock = SystemClock(), maxJumpSeconds: Int64,
        monotonic: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        onRefusal: @escaping @Sendable (_ wall: Instant, _ kept: Instant) -> Void = { _, _ in }
    ) {
        self.base = base
        self.maxJumpSeconds = maxJumpSeconds
        self.monotonic = monotonic
        self.onRefusal = onRefusal
    }

    public func now() -> Instant {
        let wall = base.now()
        let mono = monotonic()
        let (time, refused) = anchor.withLock { anchor -> (Instant, Bool) in
            guard let last = anchor else {
                anchor = Anchor(wall: wall, monotonic: mono)
                return (wall, false)
            }
            let elapsed = Instant((mono - last.monotonic).components.seconds)
            let expected = last.wall + elapsed
            if abs(wall - expected) <= maxJumpSeconds {
                anchor = Anchor(wall: wall, monotonic: mono)
                return (wall, false)
            }
            return (expected, true)
        }
        if refused { onRefusal(wall, time) }
        return time
    }
}

extension GuardedWallClock {
    /// The wall clock a long-running service (`sameday worker`, `sameday sources`) keeps: every refused reading is
    /// counted in `sameday_clock_jumps_refused_total`, and logged once a minute while the wall clock stays off.
    static func forService(_ name: String, maxJumpSeconds: Int, metrics: WorkerMetrics, logger: Logger)
        -> GuardedWallClock
    {
        GuardedWallClock(
            maxJumpSeconds: Int64(maxJumpSeconds),
            onRefusal: { [logger, metrics, throttle = LogThrottle()] wall, kept in
                metrics.increment(.clockJumpsRefusedTotal)
                guard throttle.allows(at: kept) else { return }
                logger.error(
                    "wall clock jump refused: the system clock disagrees with the elapsed time; restart \(name) to adopt it",
                    metadata: ["wall": "\(RFC3339.format(wall))", "kept": "\(RFC3339.format(kept))"])
            })
    }
}
