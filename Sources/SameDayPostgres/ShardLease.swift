import Foundation
import Logging
import PostgresNIO
import SameDayFiles
import SameDayStore
import Synchronization

/// The right to serve one shard, held by one worker at a time: a row in `shard_lease` with an expiry on the
/// server's clock, renewed every second by a thread of the holder's own, and a fencing epoch that moves on at every
/// take. A holder that stops renewing (its machine hangs, its network dropped, it was frozen) loses the lease `ttl`
/// after its last renewal, whatever its TCP session does; a holder whose session ended (the process died and the
/// kernel closed its socket) loses it at once, as the row names its backend. A standby's next `tryAcquire` takes
/// it. The store's every transaction checks the epoch and the expiry (`PostgresShardStore`), so an old holder that
/// comes back commits nothing.
public final class ShardLease: Sendable {
    public let shard: String
    public let holder: String
    /// How long the lease lasts after a renewal.
    public let ttl: Duration
    private let connection: BlockingConnection
    private struct Held {
        var epoch: Int64?
        /// When the last renewal (or the take) was sent: the lease is surely held until this plus `ttl`.
        var renewedAt: ContinuousClock.Instant?
        var lost: String?
        var stopping = false
        var paused = false
    }
    private let held = Mutex(Held())

    public init(
        url: PostgresStoreURL, passwordFile: String?, shard: String, holder: String, ttl: Duration = .seconds(10),
        logger: Logger = Logger(label: "sameday.lease")
    ) throws {
        self.shard = shard
        self.holder = holder
        self.ttl = ttl
        connection = try BlockingConnection(
            url: url, password: try readPassword(file: passwordFile), name: "lease \(shard)", logger: logger)
        try PostgresSchema.migrate(connection)
    }

    private var ttlMilliseconds: Int64 {
        ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000
    }

    /// Takes the lease if it is free (never taken, released, or expired): the new fencing epoch, or nil while
    /// another worker holds it. On success a thread renews it every second until `release` or a failed renewal.
    public func tryAcquire() throws -> Int64? {
        let sent = ContinuousClock.now
        // The row lock of this update waits for a commit of the previous holder in flight (its transactions hold
        // the row FOR SHARE): once it returns, every commit of the old epoch is in, and every later one is refused.
        let epoch = try connection.run(
            """
            INSERT INTO shard_lease (shard, epoch, holder, acquired_at, expires_at, backend_pid)
                VALUES (\(shard), 1, \(holder), now(), now() + \(ttlMilliseconds) * interval '1 millisecond',
                    pg_backend_pid())
            ON CONFLICT (shard) DO UPDATE SET epoch = shard_lease.epoch + 1, holder = excluded.holder,
                acquired_at = excluded.acquired_at, expires_at = excluded.expires_at,
                backend_pid = excluded.backend_pid
            WHERE shard_lease.expires_at < now()
                OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = shard_lease.backend_pid)
            RETURNING epoch
            """
        ).first?.decode(Int64.self)
        guard let epoch else { return nil }
        held.withLock { $0 = Held(epoch: epoch, renewedAt: sent) }
        NamedThread.start("sameday.lease-renewal") { [self] in renewLoop(epoch: epoch) }
        return epoch
    }

    /// Renews every second while held; the first renewal the server refuses (the lease expired or another worker
    /// took it) or that fails for `ttl` marks the lease lost.
    private func renewLoop(epoch: Int64) {
        while true {
            Thread.sleep(forTimeInterval: 1)
            let (stopping, paused, renewedAt) = held.withLock { ($0.stopping, $0.paused, $0.renewedAt) }
            if stopping { return }
            if paused { continue }
            if let renewedAt, ContinuousClock.now - renewedAt >= ttl {
                lose("not renewed for \(ttl) (the process was paused, or the store unreachable)")
                return
            }
            let sent = ContinuousClock.now
            do {
                let renewed =
                    try connection.run(
                        """
                        UPDATE shard_lease SET expires_at = now() + \(ttlMilliseconds) * interval '1 millisecond'
                        WHERE shard = \(shard) AND epoch = \(epoch) AND expires_at > now() RETURNING epoch
                        """
                    ).first != nil
                guard renewed else {
                    lose("the store says the lease expired or another worker took it")
                    return
                }
                held.withLock { $0.renewedAt = sent }
            } catch {
                // A lost round trip: the next one may pass; the expiry check above ends it after `ttl`.
                continue
            }
        }
    }

    /// Stops renewing without giving the lease back, as a holder frozen or cut off from the store would (tests).
    public func pauseRenewal() { held.withLock { $0.paused = true } }

    private func lose(_ reason: String) { held.withLock { $0.lost = $0.lost ?? reason } }

    /// Why the lease is no longer held, or nil while it is: the server refused a renewal, or none has gone
    /// through for `ttl` on this process's monotonic clock (which runs on while the process is frozen, so a
    /// worker resumed after a pause knows at once, before any round trip).
    public var lostReason: String? {
        held.withLock { h in
            if let lost = h.lost { return lost }
            if let renewedAt = h.renewedAt, ContinuousClock.now - renewedAt >= ttl {
                return "not renewed for \(ttl) (the process was paused, or the store unreachable)"
            }
            return nil
        }
    }

    /// Who holds the shard now, and since when (an operator, `/readyz` of a standby).
    public func currentHolder() throws -> (holder: String, epoch: Int64)? {
        guard
            let row = try connection.run(
                "SELECT holder, epoch FROM shard_lease WHERE shard = \(shard) AND expires_at > now()"
            ).first
        else { return nil }
        let (holder, epoch) = try row.decode((String, Int64).self)
        return (holder, epoch)
    }

    /// Gives the lease back (a graceful stop): it expires at once, so a standby takes it at its next poll.
    public func release() {
        let wasLost = lostReason
        let epoch = held.withLock { h in
            h.stopping = true
            h.lost = h.lost ?? "released"
            return h.epoch
        }
        if let epoch, wasLost == nil {
            _ = try? connection.run(
                "UPDATE shard_lease SET expires_at = now() - interval '1 second' WHERE shard = \(shard) AND epoch = \(epoch)"
            )
        }
        connection.close()
    }
}
