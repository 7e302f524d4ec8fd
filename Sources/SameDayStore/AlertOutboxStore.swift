import SameDayCore

/// The outbox side of a store: the alerts (and refused events) a commit stored, until the broker confirmed them and
/// the alert files hold them. A worker shard's store and `sameday sources`' store both keep one, and `AlertRelay`
/// delivers from either the same way.
public protocol AlertOutboxStore: AnyObject, Sendable {
    /// Outbox rows not yet confirmed by the broker, oldest first.
    func unpublishedAlerts(limit: Int, offset: Int) throws -> [OutboxAlert]
    /// Outbox rows not yet appended to the alerts files, oldest first.
    func unfiledAlerts(limit: Int) throws -> [OutboxAlert]
    /// Dead letters not yet confirmed by the broker, oldest first.
    func pendingDeadLetters(limit: Int) throws -> [DeadLetter]
    func markPublished(_ ids: [String]) throws
    func markFiled(_ ids: [String]) throws
}
