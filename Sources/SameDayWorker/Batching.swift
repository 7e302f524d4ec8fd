/// The consume loop's decisions, apart from any I/O: when to commit the batch in hand, how long to wait for the
/// next delivery, and when to snapshot the rollups. Time is passed in, so tests drive it with a manual clock.
///
/// A batch is committed when it is full (`batchSize`), when its first delivery has waited `batchDelay`, or, with
/// no delivery pending, as soon as something else is staged (alerts fired by the clock, delivery marks). Snapshots
/// come every `snapshotInterval`, and when the clock's day changes (at most every `daySnapshotGap`: a backfill on
/// the events clock crosses days quickly).
public struct BatchingStateMachine<Moment: InstantProtocol>: Sendable where Moment.Duration == Duration {
    public struct Settings: Sendable {
        public var batchSize: Int
        public var batchDelay: Duration
        public var snapshotInterval: Duration
        /// The longest wait for a delivery: the loop comes back this often to fire timers and check stop.
        public var pollInterval: Duration
        public var daySnapshotGap: Duration

        public init(
            batchSize: Int, batchDelay: Duration, snapshotInterval: Duration = .seconds(60),
            pollInterval: Duration = .milliseconds(250),
            daySnapshotGap: Duration = .seconds(5)
        ) {
            self.batchSize = batchSize
            self.batchDelay = batchDelay
            self.snapshotInterval = snapshotInterval
            self.pollInterval = pollInterval
            self.daySnapshotGap = daySnapshotGap
        }
    }

    public enum Action: Equatable, Sendable {
        case commit
        /// Wait at most this long for the next delivery.
        case wait(Duration)
    }

    public let settings: Settings
    /// Deliveries taken since the last commit.
    public private(set) var pending = 0
    public private(set) var batchStarted: Moment?
    private var lastSnapshot: Moment?
    private var lastSnapshotDay: Int64?

    public init(settings: Settings) { self.settings = settings }

    public mutating func delivered(at now: Moment) {
        pending += 1
        if batchStarted == nil { batchStarted = now }
    }

    /// What to do now. `otherChanges`: something besides deliveries is staged (asked only when no batch is open);
    /// `nextTimer`: how far away the next alert threshold is (wall clock), if any.
    public func next(now: Moment, otherChanges: @autoclosure () -> Bool, nextTimer: Duration? = nil) -> Action {
        if pending >= settings.batchSize { return .commit }
        var wait = settings.pollInterval
        if let batchStarted {
            let age = batchStarted.duration(to: now)
            if age >= settings.batchDelay { return .commit }
            wait = min(wait, settings.batchDelay - age)
        } else if otherChanges() {
            return .commit
        }
        if let nextTimer { wait = min(wait, max(.zero, nextTimer)) }
        return .wait(wait)
    }

    /// The batch in hand went to the committer.
    public mutating func committed() {
        pending = 0
        batchStarted = nil
    }

    /// Whether a rollup snapshot is due; `day` is the engine clock's day.
    public func snapshotDue(now: Moment, day: Int64) -> Bool {
        guard let lastSnapshot else { return true }
        let since = lastSnapshot.duration(to: now)
        return since >= settings.snapshotInterval || (day != lastSnapshotDay && since >= settings.daySnapshotGap)
    }

    public mutating func snapshotted(now: Moment, day: Int64) {
        lastSnapshot = now
        lastSnapshotDay = day
    }
}
