import Foundation
import SameDayAdapters
import SameDayBroker
import SameDayCore
import Testing

@Suite("File adapter: CSV and JSON lines (no broker)")
struct FileAdapterTests {
    @Test("reader: BOM, CRLF, ';' with quoted separators, quotes and line breaks inside fields, Vietnamese text")
    func readerHandlesRealExports() throws {
        let dir = temporaryFolder("reader")
        let path = dir + "/export.csv"
        write(
            "Mã hồ sơ;Tên thủ tục;Trạng thái\r\nHS-1;\"Chứng thực bản sao; văn bản\";Đã tiếp nhận\r\n\r\nHS-2;\"Dòng một\r\ndòng \"\"hai\"\"\";Yêu cầu bổ sung\r\nHS-3;x;\"Đã trả kết quả\"",
            to: path, bom: true)
        let reader = try RecordReader(path: path, kind: .csv(delimiter: nil))
        #expect(reader.header == ["Mã hồ sơ", "Tên thủ tục", "Trạng thái"])
        var records: [SourceRecord] = []
        while let record = try reader.nextRecord() { records.append(record) }
        #expect(records.map(\.line) == [2, 4, 6])
        #expect(records[0].fields == ["HS-1", "Chứng thực bản sao; văn bản", "Đã tiếp nhận"])
        #expect(records[1].fields == ["HS-2", "Dòng một\r\ndòng \"hai\"", "Yêu cầu bổ sung"])
        #expect(records[2].fields == ["HS-3", "x", "Đã trả kết quả"])
        #expect(records.allSatisfy { $0.syntaxError == nil })
        #expect(records[2].endOffset == reader.fileSize)
    }

    @Test("reader: comma files, stray quotes and unterminated quotes are errors of that record only")
    func readerErrors() throws {
        let dir = temporaryFolder("reader-errors")
        let path = dir + "/export.csv"
        write("a,b\n1,2\n3,x\"y\n4,\"5\"z\n6,\"unterminated\n", to: path)
        let reader = try RecordReader(path: path, kind: .csv(delimiter: nil))
        var records: [SourceRecord] = []
        while let record = try reader.nextRecord() { records.append(record) }
        #expect(records[0].fields == ["1", "2"] && records[0].syntaxError == nil)
        #expect(records[1].syntaxError?.contains("quote inside an unquoted field") == true)
        #expect(records[2].syntaxError?.contains("text after a closing quote") == true)
        #expect(records[3].syntaxError == "unterminated quoted field")
    }

    @Test("dry run of a Vietnamese export: events, skips and precise rejects; personal data never read")
    func vietnameseExport() throws {
        let dir = temporaryFolder("vi")
        let path = dir + "/motcua.csv"
        let csv = [
            "STT;Mã hồ sơ;Mã thủ tục;Mã đơn vị;Họ tên;Số CCCD;Trạng thái;Thời gian;Hình thức",
            "1;760-220518-0001;2.000815.000.00.00.H29;760;Nguyễn Văn An;079123456789;Đã tiếp nhận;18/05/2022 08:15:00;Trực tiếp",
            // The status in decomposed Unicode (NFD), as some exports write it: still the same label.
            "2;760-220518-0001;2.000815.000.00.00.H29;760;Nguyễn Văn An;079123456789;\("Yêu cầu bổ sung".decomposedStringWithCanonicalMapping);18/05/2022 09:00;",
            "3;760-220518-0001;2.000815.000.00.00.H29;760;Nguyễn Văn An;079123456789;Đang xử lý;18/05/2022 09:30;",
            "4;760-220518-0002;2.000815.000.00.00.H29;760;Trần Bình;079000000001;Đã tiếp nhận;31/02/2022 08:00;",
            "5;760-220518-0003;2.000815.000.00.00.H29;760;Lê Cường;079000000002;Đã huỷ;18/05/2022 08:00;",
            "6;760-220518-0004;2.000815.000.00.00.H29;999;Lê Cường;079000000002;Đã tiếp nhận;18/05/2022 08:00;",
            "7;760-220518-0005;2.000815.000.00.00.H29;760;only;three",
            "8;;2.000815.000.00.00.H29;760;Phạm Dung;079000000003;Đã tiếp nhận;18/05/2022 08:00;",
        ].joined(separator: "\r\n")
        write(csv, to: path, bom: true)
        let publisher = FilePublisher(profile: try profile(vietnameseProfileJSON), configuration: hcmc, sink: nil)
        publisher.rejectsPath = dir + "/rejects.jsonl"
        var rejected: [(Int, String)] = []
        publisher.onRejected = { rejected.append(($0, $1)) }
        let summary = try publisher.run(input: path)
        #expect(summary.published == 2 && summary.skipped == 1 && summary.rejected == 5)
        #expect(rejected.map(\.0) == [5, 6, 7, 8, 9])
        #expect(rejected[0].1.contains("\"31/02/2022 08:00\": no such date: February 2022 has 28 days"))
        #expect(rejected[1].1.contains("unknown status \"Đã huỷ\""))
        #expect(rejected[2].1.contains("unit \"999\" is not in the units registry"))
        #expect(rejected[3].1.contains("malformed CSV: 6 fields, the header has 9"))
        #expect(rejected[4].1.contains("column \"Mã hồ sơ\" (dossier) is empty"))
        // The rejects file keeps the original line, its number and the reason.
        let lines = try String(contentsOfFile: dir + "/rejects.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(first["line"] as? Int == 5)
        #expect((first["record"] as? String)?.hasPrefix("4;760-220518-0002;") == true)
        #expect(first["file"] as? String == path)
    }

    @Test("mapped events: canonical, no personal data, deterministic ids, channel only on received")
    func mappedEvents() throws {
        let p = try profile(vietnameseProfileJSON)
        let header = ["Mã hồ sơ", "Mã thủ tục", "Mã đơn vị", "Họ tên", "Trạng thái", "Thời gian", "Hình thức"]
        let mapper = try RecordMapper(
            profile: p, configuration: hcmc, names: SameDayProducerNames(), header: header)
        func record(_ fields: [String]) -> SourceRecord {
            SourceRecord(line: 2, endOffset: 0, text: [], fields: fields, syntaxError: nil)
        }
        let row = [
            "26734-220518-0007", "2.000884.000.00.00.H29", "26734", "Trần Thị Bình", "Đã tiếp nhận", "18/05/2022 09:02",
            "Trực tuyến",
        ]
        let (event, message) = try #require(mapper.map(record(row)).mappedEvent, "not mapped")
        #expect(event.type == .received && event.channel == .online && event.unit == "26734")
        #expect(event.occurredAt == RFC3339.parse("2022-05-18T09:02:00+07:00"))
        #expect(event.eventId.hasPrefix("motcua-test:") && event.eventId.utf8.count == 12 + 32)
        #expect(message.routingKey == "commune.26734.received")
        #expect(message.messageID == event.eventId)
        let body = String(decoding: message.body, as: UTF8.self)
        #expect(!body.contains("Bình") && !body.contains("Trần"))
        // Same record → same id; a different time → another id.
        let again = try #require(mapper.map(record(row)).mappedEvent).event
        #expect(again.eventId == event.eventId)
        var later = row
        later[5] = "18/05/2022 09:03"
        let other = try #require(mapper.map(record(later)).mappedEvent).event
        #expect(other.eventId != event.eventId)
        // A profile can derive ids from fewer fields: then a corrected procedure code keeps the id.
        let narrow = try profile(
            vietnameseProfileJSON.replacingOccurrences(
                of: #""source": "motcua-test","#,
                with: #""source": "motcua-test", "eventIdFrom": ["dossier", "unit", "status", "occurredAt"],"#))
        let narrowMapper = try RecordMapper(
            profile: narrow, configuration: hcmc, names: SameDayProducerNames(), header: header)
        var corrected = row
        corrected[1] = "2.000815.000.00.00.H29"
        let n1 = try #require(narrowMapper.map(record(row)).mappedEvent).event
        let n2 = try #require(narrowMapper.map(record(corrected)).mappedEvent).event
        #expect(n1.eventId == n2.eventId && n1.eventId != event.eventId)
        // A channel on a non-received event is dropped, not an error.
        var resolved = row
        resolved[4] = "Đã có kết quả"
        let r = try #require(mapper.map(record(resolved)).mappedEvent).event
        #expect(r.channel == nil && r.type == .resolved)
    }

    @Test("the appointment slip's date maps to promisedAt on received; it leaves the derived id alone")
    func promisedAt() throws {
        let p = try profile(
            vietnameseProfileJSON.replacingOccurrences(
                of: #""channel": "Hình thức"}"#, with: #""channel": "Hình thức", "promisedAt": "Ngày hẹn trả"}"#))
        let header = ["Mã hồ sơ", "Mã thủ tục", "Mã đơn vị", "Trạng thái", "Thời gian", "Hình thức", "Ngày hẹn trả"]
        let mapper = try RecordMapper(profile: p, configuration: hcmc, names: SameDayProducerNames(), header: header)
        let plainHeader = Array(header.dropLast())
        let plain = try RecordMapper(
            profile: try profile(vietnameseProfileJSON), configuration: hcmc, names: SameDayProducerNames(),
            header: plainHeader)
        func record(_ fields: [String]) -> SourceRecord {
            SourceRecord(line: 7, endOffset: 0, text: [], fields: fields, syntaxError: nil)
        }
        let row = [
            "26734-220518-0008", "2.000884.000.00.00.H29", "26734", "Đã tiếp nhận", "18/05/2022 09:02", "Trực tiếp",
            "18/05/2022 16:30",
        ]
        let (event, message) = try #require(mapper.map(record(row)).mappedEvent, "not mapped")
        #expect(event.promisedAt == RFC3339.parse("2022-05-18T16:30:00+07:00"))
        #expect(String(decoding: message.body, as: UTF8.self).contains(#""promisedAt":"2022-05-18T16:30:00+07:00""#))
        // The same record from an export without the column has the same id: a re-read file is not sent twice.
        let without = try #require(plain.map(record(Array(row.dropLast()))).mappedEvent).event
        #expect(without.eventId == event.eventId && without.promisedAt == nil)
        // An empty cell is no promise; an unreadable one refuses the record, naming the column.
        var empty = row
        empty[6] = ""
        #expect(try #require(mapper.map(record(empty)).mappedEvent).event.promisedAt == nil)
        var bad = row
        bad[6] = "31/02/2022 10:00"
        guard case .rejected(let why) = mapper.map(record(bad)) else {
            Issue.record("an impossible promise date was accepted")
            return
        }
        #expect(why.contains("Ngày hẹn trả"))
        // On another event type the column is ignored, as channel is.
        var resolved = row
        resolved[3] = "Đã có kết quả"
        #expect(try #require(mapper.map(record(resolved)).mappedEvent).event.promisedAt == nil)
    }

    @Test("a profile column missing from the header stops the file with a clear message")
    func missingColumn() throws {
        let dir = temporaryFolder("missing-column")
        write("Mã hồ sơ;Trạng thái\nHS-1;Đã tiếp nhận\n", to: dir + "/x.csv")
        let publisher = FilePublisher(profile: try profile(vietnameseProfileJSON), configuration: hcmc, sink: nil)
        #expect {
            _ = try publisher.run(input: dir + "/x.csv")
        } throws: { error in
            "\(error)".contains("columns.procedure names column \"Mã thủ tục\", which is not in the header")
        }
    }

    @Test("the shipped samples: the Vietnamese CSV and the national-code JSON lines")
    func shippedSamples() throws {
        let csv = FilePublisher(
            profile: try MappingProfile.load(path: repoPath("deploy/adapters/profiles/motcua-q1.json")),
            configuration: hcmc, sink: nil)
        let a = try csv.run(input: repoPath("deploy/adapters/samples/motcua-q1-2022-05-18.csv"))
        #expect(a.published == 6 && a.skipped == 1 && a.rejected == 2)
        let jsonl = FilePublisher(
            profile: try MappingProfile.load(path: repoPath("deploy/adapters/profiles/dvc-national-codes.json")),
            configuration: hcmc, sink: nil)
        var reasons: [String] = []
        jsonl.onRejected = { reasons.append($1) }
        let b = try jsonl.run(input: repoPath("deploy/adapters/samples/dvc-so-tu-phap-2022-05-18.jsonl"))
        #expect(b.published == 5 && b.rejected == 3)
        #expect(reasons[0].contains("unknown status \"11\""))
        #expect(reasons[2].contains("malformed JSON"))
    }

    @Test("deploy/rabbitmq/users.json and definitions.json are what `sameday topology` prints for the shipped registry")
    func usersFileMatchesCode() throws {
        let registry = try UnitSystemRegistry.load(
            path: repoPath("deploy/adapters/unit-systems.json"), allowDemoTokens: true, units: hcmc.units)
        let users = SameDayBrokerUsers(
            unitSystems: registry.brokerUsers, supervisors: try registry.brokerSupervisors(),
            topology: SameDayTopology(shards: 4))
        let file = try Data(contentsOf: URL(fileURLWithPath: repoPath("deploy/rabbitmq/users.json")))
        #expect(
            file == users.definitionsJSON() + Data("\n".utf8),
            "regenerate: swift run sameday topology users --unit-systems deploy/adapters/unit-systems.json --config deploy/config/hcmc-2022 > deploy/rabbitmq/users.json"
        )
        // One boot-time file, deploy/rabbitmq/definitions.json: the topology's sections and the users' together.
        let mergedData = users.definitionsJSON(mergedWith: SameDayTopology(shards: 4).topology.definitionsJSON())
        let definitions = try Data(contentsOf: URL(fileURLWithPath: repoPath("deploy/rabbitmq/definitions.json")))
        #expect(
            definitions == mergedData + Data("\n".utf8),
            "regenerate: swift run sameday topology definitions --shards 4 --unit-systems deploy/adapters/unit-systems.json --config deploy/config/hcmc-2022 > deploy/rabbitmq/definitions.json"
        )
        let merged = try JSONSerialization.jsonObject(with: mergedData) as! [String: Any]
        #expect(
            Set(merged.keys) == [
                "vhosts", "exchanges", "queues", "bindings", "policies", "users", "permissions", "topic_permissions",
            ])
        // Two unit systems, two supervisors, the worker, the notifier, the board and the receiver.
        #expect((merged["users"] as! [Any]).count == 8 && (merged["queues"] as! [Any]).count == 7)
        let q1 = users.permissions(users.unitSystems[0])
        #expect(q1.topic?.write == "^[a-z]+\\.(26734|26737|760)\\.[a-z_]+$")
        #expect(users.permissions(users.unitSystems[1]).topic?.write == "^[a-z]+\\.(000_00_15_H29)\\.[a-z_]+$")
        // The city's supervisor reads every unit's alerts; District 1's reads District 1's and its ten wards'.
        #expect(users.permissions(supervisor: users.supervisors[0]).topic == nil)
        let district = users.permissions(supervisor: users.supervisors[1])
        let wards = hcmc.units.filter { $0.parent == "760" }.map(\.code)
        #expect(wards.count == 10)
        #expect(district.topic?.exchange == "sameday.alerts" && district.topic?.write == "^$")
        #expect(district.topic?.read == SameDayBrokerUsers.alertBindingPattern(units: ["760"] + wards))
    }
}
