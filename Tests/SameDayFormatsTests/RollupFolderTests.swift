import Foundation
import SameDayCore
import SameDayFormats
import Testing

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite("Rollup folders: a period read back from daily files")
struct RollupFolderTests {
    let configuration = try! ConfigurationFolder.load(
        repositoryRoot.appendingPathComponent("deploy/config/hcmc-2022").path)

    /// A realistic week of the seed's month, split over two shards by dossier, each replayed into its own folder.
    func twoShards(_ folder: String) throws -> (roots: [String], events: [DossierEvent], days: ClosedRange<Int64>) {
        let month = try SeedMonth(scenario: .realistic, scale: 0.002).events(config: configuration)
        let from = LocalDate(year: 2022, month: 5, day: 16)!, to = LocalDate(year: 2022, month: 5, day: 22)!
        let events = month.filter { LocalTime.day(of: $0.occurredAt) <= to.dayNumber }
        let days = from.dayNumber...to.dayNumber
        var roots: [String] = []
        for shard in 0..<2 {
            let mine = events.filter { Int(FNV1a.hash($0.dossier) % 2) == shard }
            let replay = try Replay.run(events: mine, config: configuration, options: ReplayOptions())
            var written: [String: Int] = [:]
            let root = folder + "/shard-\(shard)/rollups"
            _ = try RollupFiles.write(
                facts: replay.facts(), days: days, configuration: configuration, root: root, written: &written)
            roots.append(root)
        }
        return (roots, events, days)
    }

    @Test("two shards' daily files add up to the rollup computed directly for the period, fields included")
    func periodEqualsDirectRollup() throws {
        let folder = NSTemporaryDirectory() + "sameday-rollup-folder-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (roots, events, days) = try twoShards(folder)
        let from = LocalDate(dayNumber: days.lowerBound), to = LocalDate(dayNumber: days.upperBound)

        let period = try RollupFolder.period(rollups: roots, from: from, to: to, fields: true)
        let direct = Rollup.compute(
            facts: try Replay.run(events: events, config: configuration, options: ReplayOptions()).facts(),
            period: Period(from: from, to: to), config: configuration)
        #expect(period.rollup.unitsCSV() == direct.unitsCSV())
        #expect(period.rollup.blocksCSV() == direct.blocksCSV())
        // Field rows come in the order the files list them; the same rows either way.
        func lines(_ bytes: [UInt8]) -> [Substring] { String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").sorted() }
        #expect(lines(period.rollup.fieldsCSV()) == lines(direct.fieldsCSV()))
        #expect(period.rollup.identityViolations.isEmpty, "\(period.rollup.identityViolations)")
        // The chart's days: one per day, whose received figures add up to the period's.
        #expect(period.cityByDay.count == days.count)
        // (received_total also counts what was carried over, a stock: the flows are online and direct or postal.)
        let received = period.cityByDay.reduce(0) { $0 + $1.receivedOnline + $1.receivedDirectPostal }
        let city = try #require(direct.blocks.first { $0.block == nil }).figures
        #expect(received == city.receivedOnline + city.receivedDirectPostal && received > 0)
    }

    @Test("a missing day, a malformed row and fields that disagree with units each fail, naming the file")
    func damagedFolders() throws {
        let folder = NSTemporaryDirectory() + "sameday-rollup-folder-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (roots, _, days) = try twoShards(folder)
        let from = LocalDate(dayNumber: days.lowerBound), to = LocalDate(dayNumber: days.upperBound)

        // A day past the files.
        let missing = #expect(throws: RollupFolderError.self) {
            try RollupFolder.period(rollups: roots, from: from, to: to.adding(days: 1), fields: false)
        }
        #expect(missing?.description.contains("no daily rollup for 2022-05-23 in \(roots[0])") == true)

        // A row cut short, on its physical line.
        let units = roots[1] + "/daily/2022-05-18/units.csv"
        let good = try #require(FileManager.default.contents(atPath: units))
        var lines = String(decoding: good, as: UTF8.self).split(separator: "\r\n").map(String.init)
        try #require(lines.count > 1, "a day with rows")
        lines[1] = lines[1].split(separator: ",").dropLast(3).joined(separator: ",")
        try Data((lines.joined(separator: "\r\n") + "\r\n").utf8).write(to: URL(fileURLWithPath: units))
        let malformed = #expect(throws: RollupFolderError.self) {
            try RollupFolder.period(rollups: roots, from: from, to: to, fields: false)
        }
        #expect(malformed?.description == "\(units):2: malformed row")
        try good.write(to: URL(fileURLWithPath: units))
        _ = try RollupFolder.period(rollups: roots, from: from, to: to, fields: true)

        // Another day's fields under this day's name: the fields no longer add up to the units.
        let fields = roots[1] + "/daily/2022-05-18/fields.csv"
        try FileManager.default.removeItem(atPath: fields)
        try FileManager.default.copyItem(atPath: roots[1] + "/daily/2022-05-19/fields.csv", toPath: fields)
        let disagree = #expect(throws: RollupFolderError.self) {
            try RollupFolder.period(rollups: roots, from: from, to: to, fields: true)
        }
        #expect(
            disagree?.description.hasPrefix("the daily fields.csv and units.csv files disagree: unit ") == true,
            "\(String(describing: disagree))")
        _ = try RollupFolder.period(rollups: roots, from: from, to: to, fields: false)
    }
}
