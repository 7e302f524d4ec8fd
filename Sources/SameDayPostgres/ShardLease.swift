import Foundation
import Logging
import PostgresNIO
import SameDayStore

/// The right to serve one shard, held by one worker at a time: a PostgreSQL session advisory lock on
/// (SameDay, the shard's name) on a connection of its own, and a fencing epoch in `shard_lease` that moves on at
/// every take. The server frees the lock when the holder's session ends (the process died, the machine went away),
/// so a standby's next `tryAcquire` takes it; the epoch then tells the old holder's store, if it is somehow still
/// running, that its commits are refused (`PostgresShardStore` checks it in every transaction).
public final class ShardLease: Sendable {
    public let shard: String
    public let holder: String
    private let connection: BlockingConnection

    public init(
        url: PostgresStoreURL, passwordFile: String?, shard: String, holder: String,
        logger: Logger = Logger(label: "sameday.lease")
    ) throws {
        self.shard = shard
        self.holder = holder
        connection = try BlockingConnection(
            url: url, password: try readPassword(file: passwordFile), name: "lease \(shard)", logger: logger)
        try PostgresSchema.migrate(connection)
    }

    /// Takes the lease if no one holds it: the new fencing epoch, or nil while another worker holds it. (The lock's
    /// key is a 32-bit hash of the shard's name: two names that collide would only make one shard's standby wait for
    /// the other's holder; the epoch, kept per name, still fences each shard's commits.)
    public func tryAcquire() throws -> Int64? {
        let taken = try connection.run(
            "SELECT pg_try_advisory_lock(\(PostgresSchema.lockNamespace), hashtext(\(shard)))"
        ).first?.decode(Bool.self) ?? false
        guard taken else { return nil }
        // The row lock of this update waits for a commit of the previous holder in flight: once it returns, every
        // commit of the old epoch is in, and every later one is refused.
        return try connection.run(
            """
            INSERT INTO shard_lease (shard, epoch, holder, acquired_at) VALUES (\(shard), 1, \(holder), now())
            ON CONFLICT (shard) DO UPDATE SET epoch = shard_lease.epoch + 1, holder = excluded.holder,
                acquired_at = excluded.acquired_at
            RETURNING epoch
            """
        ).first?.decode(Int64.self)
    }

    /// Whether the session that holds the lock is still alive (a round trip on the lease's own connection).
    public func isAlive() -> Bool {
        guard !connection.isClosed else { return false }
        return (try? connection.run("SELECT 1")) != nil
    }

    /// Who holds the shard now, and since when (an operator, `/readyz` of a standby).
    public func currentHolder() throws -> (holder: String, epoch: Int64)? {
        guard let row = try connection.run("SELECT holder, epoch FROM shard_lease WHERE shard = \(shard)").first
        else { return nil }
        let (holder, epoch) = try row.decode((String, Int64).self)
        return (holder, epoch)
    }

    /// Gives the lease back (a graceful stop): a standby takes it at its next poll instead of waiting for the
    /// session to time out.
    public func release() {
        _ = try? connection.run("SELECT pg_advisory_unlock_all()")
        connection.close()
    }
}
