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

    /// The city's total, 694,309; the seed reports an on-time rate of 100 %.
    public static var total: Int { sameDayResolvedSameDay.values.reduce(0, +) }
}
