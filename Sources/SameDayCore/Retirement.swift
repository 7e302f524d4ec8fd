/// When a dossier may leave a worker's state (issue "state bounded by open work"): once nothing can change its
/// figures any more except a late event, and the late events' horizon (`retainClosedDays`) has passed.
public struct Retirement: Sendable, Hashable {
    /// The earliest instant it may be retired.
    public var at: Instant
    /// It counts as abandoned in every later day (stopped, or left waiting for a supplement): once retired, the
    /// rollups count it per unit and field instead.
    public var abandonedIn: RollupCell?
}

extension Dossier {
    /// `occurredAt` of its latest event.
    public var lastEventAt: Instant? { events.last?.at }

    /// When the dossier may be retired, or nil while its SLA clock runs (running, or paused for a fee).
    ///
    /// - Closed (resolved, withdrawn), refused, or never received: `retainSeconds` after its last event.
    /// - Stopped, or waiting for a supplement: it becomes abandoned `staleAfterDays` after its last event, and is
    ///   retired `retainSeconds` after that, so every day still kept already counts it as abandoned.
    public func retirement(config: Configuration, retainSeconds: Int64) -> Retirement? {
        guard let last = lastEventAt else { return nil }
        let st = state(config: config, full: false)
        switch st.status {
        case .running, .paused:
            return nil
        case .stopped, .awaitingSupplement:
            let stale = Int64(config.alerting.staleAfterDays) * LocalTime.secondsPerDay
            let cell = st.unit.flatMap { unit in st.procedure.map { RollupCell(unit: unit, field: config.field($0)) } }
            return Retirement(at: last + stale + retainSeconds, abandonedIn: cell)
        case .resolved, .withdrawn:
            // The resolution alert, if the dossier has one, fired long before (the caller advances the dossier to
            // its clock first); one with no judging deadline never gets one and must not stay for ever.
            return Retirement(at: last + retainSeconds, abandonedIn: nil)
        case .notReceived, .refused:
            return Retirement(at: last + retainSeconds, abandonedIn: nil)
        }
    }
}
