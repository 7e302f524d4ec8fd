import SameDayCore

/// The outbox side of a store: the alerts (and refused events) a commit stored, until the broker confirmed them and
/// the alert files hold them. A worker shard's store and `sameday sources`' store both keep one, and `AlertRelay`
/// delivers from either the same way.
public protocol AlertOutboxStore: AnyObject, Sendable {
    /// Outbox rows not yet confirmed by the broker whose row number is after `seq`, oldest first, with their numbers:
    /// a caller paging through them goes on after the last row it read (an offset would skip rows that a commit
    /// marked between two pages).
    func unpublishedAlerts(limit: Int, after seq: Int64) throws -> [(seq: Int64, alert: OutboxAlert)]
    /// Outbox rows not yet appended to the alerts files, oldest first.
    func unfiledAlerts(limit: Int) throws -> [OutboxAlert]
    /// Dead letters not yet confirmed by the broker, oldest first.
    func pendingDeadLetters(limit: Int) throws -> [DeadLetter]
    func markPublished(_ ids: [String]) throws
    func markFiled(_ ids: [String]) throws
}

extension AlertOutboxStore {
    /// The first `limit` outbox rows not yet confirmed by the broker, oldest first.
    public func unpublishedAlerts(limit: Int = 1000) throws -> [OutboxAlert] {
        try unpublishedAlerts(limit: limit, after: 0).map(\.alert)
    }
}
