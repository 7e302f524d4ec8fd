import Foundation
import SameDayCore

/// `sameday report --compare seed-2022`: the seed document's same-day figures beside ours, per block and for the
/// city, with the difference and our share of the seed's figure (a scaled run shows its scale there).
enum SeedComparison {
    static func text(_ rollup: Rollup, against name: String) throws -> String {
        guard name == SeedFigures.name else {
            throw CommandFailure("--compare \(name): the only figures known are \(SeedFigures.name)")
        }
        let seedPeriod = SeedFigures.period
        var lines: [String] = []
        if rollup.simulated {
            lines.append("\(SimulatedData.label.uppercased()): our figures come from simulated events, not from units")
        }
        lines.append(
            "compared with \(SeedFigures.name): same-day dossiers received and resolved within the day "
                + "(same_day_resolved_same_day), seed period \(seedPeriod.from) … \(seedPeriod.to)")
        if rollup.period != seedPeriod {
            lines.append("note: this report covers \(rollup.period.from) … \(rollup.period.to), not the seed's period")
        }
        var rows: [[String]] = [["block", "seed", "ours", "difference", "ours/seed"]]
        func row(_ label: String, seed: Int, ours: Int) -> [String] {
            let share = seed > 0 ? percent(ours, of: seed) + " %" : ""
            return [label, grouped(seed), grouped(ours), signed(ours - seed), share]
        }
        // In the seed's order: districts, communes, departments, vertical units.
        let byBlock = Dictionary(rollup.blocks.compactMap { b in b.block.map { ($0, b.figures) } }) { a, _ in a }
        var absent: [Block] = []
        for block in Block.allCases {
            let seed = SeedFigures.sameDayResolvedSameDay[block] ?? 0
            guard let figures = byBlock[block] else {
                // A configuration without the block (no districts since 2025): nothing of ours to set beside it.
                absent.append(block)
                rows.append([block.rawValue, grouped(seed), "—", "", ""])
                continue
            }
            rows.append(row(block.rawValue, seed: seed, ours: figures.sameDayResolvedSameDay))
        }
        let all =
            rollup.blocks.first { $0.block == nil }?.figures
            ?? rollup.blocks.reduce(RollupFigures()) { $0 + $1.figures }
        var total = row("all", seed: SeedFigures.total, ours: all.sameDayResolvedSameDay)
        // The seed states its total as "hơn 694.309": more than, not an exact count.
        total[1] = "> " + total[1]
        rows.append(total)
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max()! }
        for r in rows {
            lines.append(
                r.enumerated().map { i, c in
                    i == 0
                        ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[i] - c.count) + c
                }.joined(separator: "  "))
        }
        if !absent.isEmpty {
            lines.append(
                "—: this configuration has no \(absent.map(\.rawValue).joined(separator: ", ")) units; "
                    + "the city row compares all of ours with the seed's total")
        }
        let rate = all.onTimeRate.isEmpty ? "— (nothing resolved)" : all.onTimeRate + " %"
        lines.append("on-time rate: seed 100 %, ours \(rate)")
        let quoted = grouped(SeedFigures.total).replacingOccurrences(of: ",", with: ".")
        lines.append("the seed states the city's total as \"hơn \(quoted)\" (more than)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// 694309 → "694,309".
    static func grouped(_ v: Int) -> String {
        let digits = String(v.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (v < 0 ? "-" : "") + out
    }

    static func signed(_ v: Int) -> String { v > 0 ? "+" + grouped(v) : grouped(v) }

    /// One decimal, rounded half up.
    static func percent(_ a: Int, of b: Int) -> String {
        let tenths = (2000 * a + b) / (2 * b)
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension SeedComparison {
    /// After a table on stdout; after CSV or JSON on stderr, so that the data on stdout stays a clean file.
    static func print(_ text: String, toStandardOutput: Bool) {
        let bytes = Data(("\n" + text).utf8)
        (toStandardOutput ? FileHandle.standardOutput : FileHandle.standardError).write(bytes)
    }
}
