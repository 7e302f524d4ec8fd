import ArgumentParser
import Foundation
import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

// Memory is measured as resident-set growth (/proc/self/statm): glibc's mallinfo2 is not visible to Swift
// without a C shim target, and RSS growth over a million fresh allocations is an honest upper bound.
/// `sameday-bench core`: throughput of the domain core on one core, and the memory of an open dossier.
struct CoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract:
            "Benchmark event decoding, applying, deadline computation and memory per open dossier (one JSON line).")

    @Option(help: "Configuration folder (default: a built-in copy of the test fixture configuration).")
    var config: String?
    @Option(help: "Events decoded and applied.") var events: Int = 1_000_000
    @Option(help: "Open dossiers for the memory measurement.") var dossiers: Int = 1_000_000

    func run() throws {
        let cfg = try loadConfig()
        // Measured first, before other phases leave freed memory behind that would hide the growth:
        // resident memory growth over `dossiers` open dossiers (one `received` each) in a dictionary.
        let receivedTemplate = DossierEvent(
            eventId: "ev", dossier: "d", unit: "760", procedure: "1.000001.000.00.00.H29", type: .received,
            occurredAt: LocalDate("2022-05-18")!.startInstant + 9 * 3600, channel: .direct, source: "bench")
        let rssBefore = residentBytes()
        var open: [String: Dossier] = [:]
        for i in 0..<dossiers {
            var e = receivedTemplate
            e.dossier = "000.00.15.H29-220518-\(i)"
            e.eventId = "ev-\(i)"
            var d = Dossier(code: e.dossier)
            _ = try d.apply(e, now: e.occurredAt, config: cfg)
            open[e.dossier] = d
        }
        let rssAfter = residentBytes()
        let rssPerDossier = Double(rssAfter - rssBefore) / Double(max(1, dossiers))
        withExtendedLifetime(open) {}
        open = [:]

        // A realistic stream: a synthetic month, repeated with fresh dossier codes until `events` lines.
        let month = SyntheticMonth(firstDay: LocalDate("2022-05-16")!, days: 20, dossiersPerUnitPerDay: 40, seed: 1)
            .events(config: cfg)
        var lines: [[UInt8]] = []
        lines.reserveCapacity(events)
        var round = 0
        while lines.count < events {
            for var e in month where lines.count < events {
                e.dossier = "\(round)-" + e.dossier
                e.eventId = "\(round)-" + e.eventId
                lines.append(Array(e.encoded().utf8))
            }
            round += 1
        }

        // decode
        var decoded: [DossierEvent] = []
        decoded.reserveCapacity(lines.count)
        let decodeSeconds = try time {
            for l in lines { decoded.append(try DossierEvent.decode(bytes: l)) }
        }

        // apply (each event into its dossier, with the dossier's alerts and timer as a worker would)
        var book: [String: Dossier] = [:]
        book.reserveCapacity(decoded.count / 2)
        var alerts = 0
        let applySeconds = try time {
            try decoded.withUnsafeBufferPointer { buf in
                for i in buf.indices {
                    let actions = try book[buf[i].dossier, default: Dossier(code: buf[i].dossier)].apply(
                        buf[i], now: buf[i].occurredAt, config: cfg)
                    alerts &+= actions.count
                }
            }
        }
        book = [:]

        // deadlines
        let n = 1_000_000
        var rng = SplitMix64(seed: 3)
        let unitIDs = (0..<cfg.units.count).map { UnitID($0) }
        let slas: [SLA] = [.sameDay, .hours(4), .days(1), .days(3), .days(10)]
        let base = LocalDate("2022-05-16")!.startInstant
        var sink: Int64 = 0
        let deadlineSeconds = time {
            for _ in 0..<n {
                let u = unitIDs[Int(rng.next() % UInt64(unitIDs.count))]
                let t = base + Int64(rng.next() % (30 * 86_400))
                sink &+= cfg.calendar(of: u).deadline(sla: slas[Int(rng.next() % 5)], received: t).due
            }
        }

        var w = JSONWriter()
        w.beginObject()
        w.field("events", lines.count)
        w.field("decode_per_s", Int(Double(lines.count) / decodeSeconds))
        w.field("apply_per_s", Int(Double(decoded.count) / applySeconds))
        w.field("decode_and_apply_per_s", Int(Double(decoded.count) / (decodeSeconds + applySeconds)))
        w.field("deadlines_per_s", Int(Double(n) / deadlineSeconds))
        w.field("open_dossiers", dossiers)
        w.field("bytes_per_open_dossier", Int(rssPerDossier.rounded()))
        w.field("actions", alerts)
        w.field("checksum", Int(truncatingIfNeeded: sink & 0xFFFF))
        w.endObject()
        print(w.text)
    }

    func time(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let parts = s.split(separator: " ")
        return parts.count > 1 ? (Int(parts[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    func loadConfig() throws -> Configuration {
        func read(_ name: String) -> [UInt8]? {
            guard let dir = config else { return nil }
            return FileManager.default.contents(atPath: (dir as NSString).appendingPathComponent(name)).map {
                [UInt8]($0)
            }
        }
        if let dir = config {
            guard let u = read("units.csv"), let c = read("catalog.csv"), let k = read("calendars.json") else {
                throw ValidationError("--config \(dir): units.csv, catalog.csv and calendars.json are required")
            }
            return try Configuration.parse(
                ConfigurationFiles(units: u, catalog: c, calendars: k, alerting: read("alerting.json")))
        }
        return try Configuration.parse(
            ConfigurationFiles(
                units: Array(BuiltIn.units.utf8), catalog: Array(BuiltIn.catalog.utf8),
                calendars: Array(BuiltIn.calendars.utf8), alerting: nil))
    }
}

/// A small built-in configuration so the benchmark runs without a config folder.
private enum BuiltIn {
    static let units = """
        code,name,block,parent,calendar
        760,Quận 1,district,,hcmc-standard
        769,Thành phố Thủ Đức,district,,hcmc-saturday
        767,Quận Tân Phú,district,,hcmc-standard
        26740,Phường Bến Nghé,commune,760,hcmc-standard
        27010,Phường Tân Sơn Nhì,commune,767,notary-evening
        000.00.15.H29,Sở Tư pháp,department,,hcmc-standard
        000.00.29.G01,Công an Thành phố Hồ Chí Minh,vertical,,hcmc-saturday

        """
    static let catalog = """
        procedure,name,field,sla,cutoff,scope
        1.000001.000.00.00.H29,Chứng thực bản sao,Chứng thực,same-day,,city
        1.000002.000.00.00.H29,Đăng ký khai sinh,Hộ tịch,same-day,16:00,city
        1.000003.000.00.00.H29,Cấp giấy phép xây dựng,Xây dựng,days:3,,city
        1.000004.000.00.00.H29,Xác nhận tình trạng,Tư pháp,hours:4,,city
        1.000005.000.00.00.H29,Cấp phiếu lý lịch,Tư pháp,days:1,,city

        """
    static let calendars = """
        {"calendars": [
          {"id": "hcmc-standard",
           "days": {"mon": {"sessions": ["07:30-11:30", "13:00-17:00"], "cutoff": "15:00"},
                    "tue": {"sessions": ["07:30-11:30", "13:00-17:00"], "cutoff": "15:00"},
                    "wed": {"sessions": ["07:30-11:30", "13:00-17:00"], "cutoff": "15:00"},
                    "thu": {"sessions": ["07:30-11:30", "13:00-17:00"], "cutoff": "15:00"},
                    "fri": {"sessions": ["07:30-11:30", "13:00-17:00"], "cutoff": "15:00"},
                    "sat": null, "sun": null},
           "holidays": ["2022-01-03", "2022-01-31", "2022-02-01", "2022-02-02", "2022-02-03", "2022-02-04",
                        "2022-04-11", "2022-05-02", "2022-05-03", "2022-09-01", "2022-09-02"]},
          {"id": "hcmc-saturday", "base": "hcmc-standard", "days": {"sat": {"sessions": ["07:30-11:30"]}}},
          {"id": "notary-evening", "base": "hcmc-standard",
           "days": {"tue": {"sessions": ["07:30-11:30", "13:00-17:00", "17:00-19:00"], "cutoff": "17:00"},
                    "thu": {"sessions": ["07:30-11:30", "13:00-17:00", "17:00-19:00"], "cutoff": "17:00"}}}
        ]}
        """
}
