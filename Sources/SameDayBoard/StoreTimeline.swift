import SameDayCore
import SameDayReport
import SameDayStore

/// A dossier's timeline from the workers' SQLite stores (one per shard, read-only): its stored state decoded and
/// explained as `sameday explain` does, with the alerts the board holds for it.
public struct StoreTimeline: TimelineSource {
    public let stores: [String]
    public let domain: Configuration

    public init(stores: [String], domain: Configuration) {
        self.stores = stores
        self.domain = domain
    }

    public func explain(_ dossier: String, alerts: [Alert], clock: Instant) throws -> String? {
        for path in stores {
            guard let bytes = try DossierLookup.state(code: dossier, storePath: path) else { continue }
            let state = try DossierRecord.decode(code: dossier, bytes, config: domain)
            return Explanation.text(state, config: domain, alerts: alerts, clock: clock)
        }
        return nil
    }
}
