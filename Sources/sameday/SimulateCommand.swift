import ArgumentParser
import Foundation
import SameDayCore
import SameDayFiles

/// `sameday simulate`: a deterministic synthetic events file.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Generate a realistic, deterministic events file (JSON lines) for the units of a configuration.",
        discussion: """
            --scenario synthetic (the default): --days days from --from, about --per-unit dossiers per unit and \
            working day. --scenario seed-2022: the 2022 action month (2022-05-15 … 2022-06-15) at the seed's volume: \
            per block exactly round(seed figure × --scale) same-day dossiers received and resolved within the day, \
            plus each unit's non-same-day traffic. --scenario realistic: the same, plus late, paused, supplemented \
            and withdrawn dossiers, out-of-order and duplicate events (README: the seed scenario). --scenario \
            congested: the same month where lateness has a cause: each unit serves its same-day dossiers in order of \
            receipt at a staff capacity of its own, arrivals peak, and what the staff cannot finish by the close is \
            late (--scale: the share of units taking part; docs/rules.md §5.6).
            """)

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case synthetic
        case seed2022 = "seed-2022"
        case realistic
        case congested
    }

    @Option(help: "Configuration folder.") var config: String
    @Option(help: "synthetic, seed-2022, realistic or congested.") var scenario: Scenario = .synthetic
    @Option(help: "seed-2022 and realistic: volume as a share of the seed's; congested: share of units; in (0, 1].")
    var scale: Double?
    @Option(help: "synthetic: number of days (default 31).") var days: Int?
    @Option(help: "synthetic: first day, YYYY-MM-DD (default 2022-05-15).") var from: String?
    @Option(help: "synthetic: average dossiers per unit and working day (default 5).") var perUnit: Int?
    @Option(help: "PRNG seed.") var seed: UInt64 = 2022
    @Flag(
        help: """
            seed-2022 and realistic: draw catalog procedures whose source is unconfirmed or illustrative too \
            (by default only confirmed ones are drawn).
            """)
    var includeUnconfirmed = false
    @Option(help: "Output file.") var out: String

    func run() throws {
        try runReportingFailures {
            let cfg = try CoreFiles.loadConfiguration(config)
            var count = 0
            let writer: StreamingFile
            switch scenario {
            case .synthetic:
                if scale != nil || includeUnconfirmed {
                    throw CommandFailure("--scale and --include-unconfirmed apply to seed-2022 and realistic only")
                }
                let days = self.days ?? 31
                let perUnit = self.perUnit ?? 5
                guard days >= 1, days <= 3660 else { throw CommandFailure("--days must be 1…3660") }
                guard perUnit >= 0 else { throw CommandFailure("--per-unit must be ≥ 0") }
                let first = try CoreFiles.parseDate(from ?? "2022-05-15", option: "--from")
                let events = SyntheticMonth(firstDay: first, days: days, dossiersPerUnitPerDay: perUnit, seed: seed)
                    .events(config: cfg)
                writer = try StreamingFile(path: out)
                for e in events { writer.write(e) }
                count = events.count
            case .congested:
                if days != nil || from != nil || perUnit != nil {
                    throw CommandFailure("--days, --from and --per-unit apply to --scenario synthetic only")
                }
                let scale = self.scale ?? 1
                guard scale > 0, scale <= 1 else { throw CommandFailure("--scale must be in (0, 1]") }
                writer = try StreamingFile(path: out)
                do {
                    let summary = try CongestedMonth(scale: scale, seed: seed, includeUnconfirmed: includeUnconfirmed)
                        .generate(config: cfg) { writer.write($0) }
                    count = summary.dossiers * 2
                    print(
                        "congested at scale \(scale): \(summary.units) units, \(summary.dossiers) same-day dossiers, "
                            + "\(summary.servedAfterClose) finished after their deadline")
                } catch {
                    writer.discard()
                    throw CommandFailure("\(config): \(error)")
                }
            case .seed2022, .realistic:
                if days != nil || from != nil || perUnit != nil {
                    throw CommandFailure("--days, --from and --per-unit apply to --scenario synthetic only")
                }
                let scale = self.scale ?? 1
                guard scale > 0, scale <= 1 else { throw CommandFailure("--scale must be in (0, 1]") }
                let month = SeedMonth(
                    scenario: scenario == .realistic ? .realistic : .seed, scale: scale, seed: seed,
                    includeUnconfirmed: includeUnconfirmed)
                let left = cfg.unconfirmedRows.catalog
                if left > 0 && !includeUnconfirmed {
                    print(
                        "\(left) catalog procedure(s) whose source is unconfirmed or illustrative are not drawn "
                            + "(--include-unconfirmed draws them)")
                }
                writer = try StreamingFile(path: out)
                do {
                    let summary = try month.generate(config: cfg) { writer.write($0) }
                    count = summary.events
                    let blocks = Block.allCases.map {
                        summary.absentBlocks.contains($0)
                            ? "\($0.rawValue) — (no such units in this configuration)"
                            : "\($0.rawValue) \(summary.sameDay[$0] ?? 0)"
                    }
                    print(
                        "\(scenario.rawValue) at scale \(scale): \(summary.dossiers) dossiers; same-day dossiers "
                            + "received and resolved within the day: \(blocks.joined(separator: ", "))")
                } catch {
                    writer.discard()
                    throw CommandFailure("\(config): \(error)")
                }
            }
            try writer.finish()
            print("wrote \(count) events to \(out)")
        }
    }
}

/// An events file written as it is generated, atomically: a temporary file in the same folder, written in large
/// chunks, fsynced, closed and renamed over the target, then the folder fsynced (as `DurableFile.writeAtomically`,
/// without holding the whole file in memory).
final class StreamingFile {
    let path: String
    let tmp: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var failure: FileError?

    init(path: String) throws {
        self.path = path
        try DurableFile.createFolder(of: path)
        let folder = (path as NSString).deletingLastPathComponent
        tmp = (folder.isEmpty ? "" : folder + "/") + ".\((path as NSString).lastPathComponent).tmp-\(getpid())"
        fd = try DurableFile.openForAppending(tmp, mode: DurableFile.publicMode, truncate: true)
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ e: DossierEvent) {
        buffer += e.encoded().utf8
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { drain() }
    }

    private func drain() {
        guard failure == nil else { buffer.removeAll(keepingCapacity: true); return }
        do {
            try DurableFile.writeAll(fd, buffer, path: tmp)
        } catch {
            failure = error
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func discard() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(tmp)
    }

    func finish() throws {
        drain()
        do {
            if let failure { throw failure }
            try DurableFile.sync(fd, path: tmp)
            guard close(fd) == 0 else { throw FileError("\(tmp): close failed") }
            fd = -1
            try DurableFile.rename(tmp, to: path)
        } catch {
            discard()
            throw error
        }
    }
}
