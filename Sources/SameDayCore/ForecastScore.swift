/// How well a kind of alert foretold lateness, over the same-day dossiers of a replay (`sameday-bench predict`, the
/// report page): of the dossiers that ended late, the share it flagged (recall) and how early (the median working
/// minutes between the first flag and the deadline); of the dossiers it flagged, the share that ended late
/// (precision); and its false flags per 1,000 dossiers resolved on time.
public struct ForecastScore: Sendable, Equatable {
    public var level: AlertLevel
    /// Same-day dossiers received, and of them: ended late (resolved late, or open past the deadline at the end).
    public var dossiers = 0
    public var late = 0
    public var onTime = 0
    /// Flagged and late ("flagged and late"), flagged and on time ("flagged and saved", or a false flag), late and
    /// never flagged ("missed").
    public var flaggedLate = 0
    public var flaggedOnTime = 0
    public var missed = 0
    /// Working minutes from the first flag to the deadline, per flagged late dossier.
    public var leads: [Int] = []

    public var recall: Double { late == 0 ? 1 : Double(flaggedLate) / Double(late) }
    public var precision: Double {
        flaggedLate + flaggedOnTime == 0 ? 1 : Double(flaggedLate) / Double(flaggedLate + flaggedOnTime)
    }
    public var medianLeadMinutes: Int {
        guard !leads.isEmpty else { return 0 }
        let sorted = leads.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
    public var falsePer1000: Double { onTime == 0 ? 0 : Double(flaggedOnTime) * 1000 / Double(onTime) }

    /// Scores `level` over the replay's same-day dossiers, given the alerts it raised; `unit` limits it to one unit.
    public static func score(
        _ level: AlertLevel, replay: Replay, alerts: [Alert], unit: UnitID? = nil
    ) -> ForecastScore {
        var firstFlag: [String: Alert] = [:]
        for a in alerts where a.level == level && firstFlag[a.dossier] == nil { firstFlag[a.dossier] = a }
        var score = ForecastScore(level: level)
        let now = replay.clock ?? 0
        for d in replay.dossiers where !d.code.isEmpty {
            let st = d.state(config: replay.config)
            guard let u = st.unit, unit == nil || u == unit, let first = st.episodes.first,
                first.deadline.sla == .sameDay, st.closure?.status != .withdrawn
            else { continue }
            let ended: Bool
            if let c = st.classification {
                ended = c == .late
            } else if st.closure == nil, st.status == .running, let due = st.judgingDue {
                ended = now > due
            } else {
                continue  // stopped, paused or waiting for the applicant: not the unit's lateness
            }
            score.dossiers += 1
            let flag = firstFlag[d.code]
            if ended {
                score.late += 1
                if let flag {
                    score.flaggedLate += 1
                    score.leads.append(max(0, flag.minutesLeft ?? 0))
                } else {
                    score.missed += 1
                }
            } else {
                score.onTime += 1
                if flag != nil { score.flaggedOnTime += 1 }
            }
        }
        return score
    }
}
