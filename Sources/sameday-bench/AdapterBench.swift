import ArgumentParser
import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore

/// `sameday-bench adapter`: a 200,000-row Vietnamese CSV export (generated from `SyntheticMonth`) published through
/// the file adapter (stream, map with a profile, derive ids, validate, publish with confirms, checkpoint), against
/// the bare `Publisher` sending the same messages to the same topology in the same run. Prints one JSON line.
struct AdapterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapter",
        abstract: "Publish a 200,000-row CSV export through the adapter with confirms; compare with the bare publisher."
    )

    @Option(help: "Rows in the export.") var rows = 200_000
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Rounds; the best round of each side is reported.") var rounds = 2
    @Option(help: "Broker URL (loopback only, no password).") var url = localBrokerURL

    func validate() throws { try refusePassword(inURL: url) }

    static let statusLabels: [EventType: String] = [
        .submitted: "Mới nộp trực tuyến", .received: "Đã tiếp nhận", .refused: "Từ chối tiếp nhận",
        .transferred: "Chuyển xử lý", .supplementRequested: "Yêu cầu bổ sung", .supplementReceived: "Đã bổ sung",
        .feeRequested: "Chờ nộp phí", .feePaid: "Đã nộp phí", .rescheduled: "Gia hạn, xin lỗi",
        .resolved: "Đã có kết quả", .returned: "Đã trả kết quả", .withdrawn: "Công dân rút hồ sơ",
        .stopped: "Dừng xử lý", .extended: "Gia hạn theo quy định",
    ]

    func run() async throws {
        let configuration = try loadConfiguration()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sameday-adapter-bench-\(getpid())")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/export.csv"
        let events = try Self.writeExport(rows: rows, configuration: configuration, to: input)
        let profile = try MappingProfile.parse(Array(Self.profileJSON.utf8), file: "bench-profile.json")
        let broker = try BrokerURL(parsing: url)
        // Reading and mapping alone (a dry run): what the adapter costs on the client side.
        let dryStart = ContinuousClock.now
        let dry = try FilePublisher(profile: profile, configuration: configuration, sink: nil).run(input: input)
        let mapPerSecond = Double(dry.published) / (ContinuousClock.now - dryStart).seconds
        var adapterRates: [Double] = []
        var rawRates: [Double] = []
        for round in 0..<rounds {
            let (adapter, raw) = try await BlockingThread.run(name: "bench.adapter") { () throws -> (Double, Double) in
                let connection = ConnectionConfiguration(brokers: [broker], connectionName: "sameday-bench.adapter")
                // Same topology shape for both sides, fresh each time so queue depth does not favour either.
                func fresh(_ side: String) throws -> SameDayTopology {
                    let topology = SameDayTopology(shards: 4, namePrefix: "bench.\(getpid()).\(round).\(side).")
                    let admin = try Connection.open(connection)
                    defer { admin.close() }
                    try topology.topology.declare(on: admin)
                    return topology
                }
                // Both topologies exist before either side runs and are deleted after both, so that no queue
                // deletion competes with a measurement; the side that goes first alternates by round.
                let rawTopology = try fresh("raw")
                let topology = try fresh("adapter")
                defer {
                    // A new connection: one left idle through the measurements would have missed its heartbeats.
                    if let admin = try? Connection.open(connection) {
                        try? rawTopology.topology.delete(on: admin)
                        try? topology.topology.delete(on: admin)
                        admin.close()
                    }
                }
                // The bare publisher: the same canonical messages, built beforehand.
                let messages = events.map {
                    EventMessage.make($0, configuration: configuration, names: rawTopology.producerNames)
                }
                func measureRaw() throws -> Double {
                    let publisher = try Publisher(PublisherConfiguration(connection: connection))
                    defer { publisher.close() }
                    let start = ContinuousClock.now
                    for message in messages { try publisher.publish(message) }
                    try publisher.waitForConfirms(timeout: .seconds(120))
                    return (ContinuousClock.now - start).seconds
                }
                func measureAdapter() throws -> (PublishSummary, Double) {
                    let spool = try Spool(directory: dir + "/spool-\(round)")
                    let sink = DurablePublisher(
                        publisher: PublisherConfiguration(connection: connection), spool: spool,
                        configuration: configuration, names: topology.producerNames)
                    defer { sink.close() }
                    let file = FilePublisher(profile: profile, configuration: configuration, sink: sink)
                    file.rejectsPath = dir + "/rejects.jsonl"
                    let start = ContinuousClock.now
                    let summary = try file.run(input: input)
                    return (summary, (ContinuousClock.now - start).seconds)
                }
                var rawSeconds = 0.0
                if round % 2 == 0 { rawSeconds = try measureRaw() }
                let (summary, seconds) = try measureAdapter()
                if round % 2 == 1 { rawSeconds = try measureRaw() }
                guard summary.published == events.count, summary.rejected == 0, summary.spooled == 0 else {
                    throw ValidationError("adapter run: \(summary.description), expected \(events.count) published")
                }
                return (Double(summary.published) / seconds, Double(messages.count) / rawSeconds)
            }
            adapterRates.append(adapter)
            rawRates.append(raw)
        }
        let best = (adapterRates.max() ?? 0, rawRates.max() ?? 0)
        print(
            try jsonLine([
                "bench": "adapter", "rows": events.count, "rounds": rounds, "events_per_s": Int(best.0),
                "raw_publish_per_s": Int(best.1), "map_only_per_s": Int(mapPerSecond),
                "ratio": ratio(best.0, best.1),
            ]))
    }

    static let profileJSON: String = {
        let statuses = statusLabels.map { "\"\($0.value)\": \"\($0.key.name)\"" }.joined(separator: ", ")
        return """
            {"source": "bench-motcua", "format": "csv", "delimiter": ";",
             "columns": {"dossier": "Mã hồ sơ", "procedure": "Mã thủ tục", "unit": "Mã đơn vị", "status": "Trạng thái",
                         "occurredAt": "Thời gian cập nhật", "seq": "Thứ tự", "channel": "Hình thức nộp",
                         "outcome": "Kết quả", "newDueAt": "Ngày hẹn trả mới"},
             "timeFormats": ["dd/MM/yyyy HH:mm:ss"],
             "statuses": {\(statuses)},
             "outcomes": {"Đạt": "approved", "Không đạt": "rejected"}}
            """
    }()

    /// Writes the export (with a personal-data column the profile never reads) and returns the events it holds,
    /// with the ids the adapter will derive.
    static func writeExport(rows: Int, configuration: Configuration, to path: String) throws -> [DossierEvent] {
        var events: [DossierEvent] = []
        var days = 30
        while events.count < rows {
            events = SyntheticMonth(
                firstDay: LocalDate("2022-05-02")!, days: days, dossiersPerUnitPerDay: 8, duplicatePerMille: 0
            ).events(config: configuration)
            days *= 2
        }
        events.removeLast(events.count - rows)
        var out: [UInt8] = [0xEF, 0xBB, 0xBF]
        out += Array(
            "Mã hồ sơ;Mã thủ tục;Mã đơn vị;Họ tên người nộp;Trạng thái;Thời gian cập nhật;Thứ tự;Hình thức nộp;Kết quả;Ngày hẹn trả mới\r\n"
                .utf8)
        let channels: [SameDayCore.Channel: String] = [
            .direct: "Trực tiếp", .online: "Trực tuyến", .postal: "Bưu chính công ích",
        ]
        for index in events.indices {
            events[index].source = "bench-motcua"
            let e = events[index]
            let fields = [
                e.dossier, e.procedure, e.unit, "Nguyễn Văn An", statusLabels[e.type]!, localTime(e.occurredAt),
                e.seq.map { String($0) } ?? "", e.channel.map { channels[$0]! } ?? "",
                e.outcome.map { $0 == .approved ? "Đạt" : "Không đạt" } ?? "", e.newDueAt.map(localTime) ?? "",
            ]
            out += Array(fields.joined(separator: ";").utf8)
            out += [0x0D, 0x0A]
            var derived = e
            derived.channel = e.type == .received ? e.channel : nil
            derived.outcome = e.type == .resolved ? e.outcome : nil
            derived.newDueAt = e.type == .rescheduled || e.type == .extended ? e.newDueAt : nil
            derived.eventId = RecordMapper.derivedEventID(derived)
            events[index] = derived
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(out)) else {
            throw ValidationError("cannot write \(path)")
        }
        return events
    }

    static func localTime(_ t: Instant) -> String {
        let local = t + LocalTime.offsetSeconds
        let day = LocalDate(dayNumber: local >= 0 ? local / 86_400 : (local - 86_399) / 86_400)
        let (y, m, d) = day.components
        let s = Int(local - day.dayNumber * 86_400)
        return String(format: "%02d/%02d/%04d %02d:%02d:%02d", d, m, y, s / 3600, s / 60 % 60, s % 60)
    }

    func loadConfiguration() throws -> Configuration {
        func read(_ name: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: (config as NSString).appendingPathComponent(name))
            else {
                throw ValidationError("--config \(config): cannot read \(name) (run from the repository root)")
            }
            return [UInt8](data)
        }
        return try Configuration.parse(
            ConfigurationFiles(
                units: try read("units.csv"), catalog: try read("catalog.csv"), calendars: try read("calendars.json"),
                alerting: nil))
    }
}
