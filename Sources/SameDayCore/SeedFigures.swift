/// The figures of the seed document (Sở Nội vụ's news item on the 2022 action month, docs/rules.md §9): the
/// same-day dossiers received and resolved within the day, per block, over 15/5–15/6/2022, all on time. Reports print
/// them beside ours (`sameday report --compare seed-2022`, the HTML report) and the `seed-2022` scenario reproduces them.
public enum SeedFigures {
    /// The scenario name and the period the figures cover.
    public static let name = "seed-2022"
    public static let period = Period(
        from: LocalDate(year: 2022, month: 5, day: 15)!, to: LocalDate(year: 2022, month: 6, day: 15)!)

    /// Same-day dossiers received and resolved within the day, per block.
    public static let sameDayResolvedSameDay: [Block: Int] = [
        .district: 229_642,
        .commune: 199_275,
        .department: 20_696,
        .vertical: 244_696,
    ]

    /// The city's total, 694,309; the seed reports an on-time rate of 100 %. The seed states it as "hơn 694.309"
    /// (more than), so reports print it as a lower bound, never as an exact measurement.
    public static var total: Int { sameDayResolvedSameDay.values.reduce(0, +) }
}

/// Data made by `sameday simulate` says so wherever it ends up: its events carry a `source` beginning with
/// `simulate:`, a replay or a worker that applied one writes `SIMULATED.txt` beside its daily rollups, and every
/// report of those rollups (the page, the CSVs, the table, the seed comparison) carries the label "số liệu mô phỏng".
public enum SimulatedData {
    /// The `source` prefix of every simulated event.
    public static let sourcePrefix = "simulate:"
    /// The label the reports carry.
    public static let label = "số liệu mô phỏng"
    /// The file beside `daily/` in a rollups folder made from simulated events.
    public static let markerFile = "SIMULATED.txt"
    public static let markerText = """
        số liệu mô phỏng: simulated data. The rollups in this folder were computed from events made by \
        `sameday simulate` (their source begins with "simulate:"); they are not measurements of any unit.

        """

    public static func source(_ rest: String) -> String { sourcePrefix + rest }

    public static func isSimulated(_ event: DossierEvent) -> Bool {
        event.source.utf8.starts(with: sourcePrefix.utf8)
    }
}
