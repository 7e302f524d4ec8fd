import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayFiles
import SameDayReceiver
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Adapters against hostile input and for tenant isolation (issue 9; no broker)")
struct HostileInputTests {
    static let header = ["Mã hồ sơ", "Mã thủ tục", "Mã đơn vị", "Trạng thái", "Thời gian", "Hình thức"]

    // MARK: 1. The plausible time window

    @Test("the file adapter rejects events outside the time window, to the rejects file with their line")
    func fileAdapterTimeWindow() throws {
        let dir = temporaryFolder("window")
        let input = dir + "/export.csv"
        write(
            [
                "Mã hồ sơ;Mã thủ tục;Mã đơn vị;Trạng thái;Thời gian;Hình thức",
                "760-220518-0001;2.000815.000.00.00.H29;760;Đã tiếp nhận;18/05/2022 08:00:00;Trực tiếp",
                "760-220518-0002;2.000815.000.00.00.H29;760;Đã tiếp nhận;18/05/1022 08:00:00;Trực tiếp",
                "760-220518-0003;2.000815.000.00.00.H29;760;Đã tiếp nhận;18/05/9999 08:00:00;Trực tiếp",
                "760-220518-0004;2.000815.000.00.00.H29;760;Đã tiếp nhận;01/01/2000 00:00:00;Trực tiếp",
            ].joined(separator: "\n"), to: input)
        let publisher = FilePublisher(profile: try profile(vietnameseProfileJSON), configuration: hcmc, sink: nil)
        publisher.rejectsPath = dir + "/rejects.jsonl"
        publisher.now = RFC3339.parse("2022-05-20T00:00:00+07:00")!
        let summary = try publisher.run(input: input)
        #expect(summary.published == 2 && summary.rejected == 2)
        let rejects = try String(contentsOfFile: dir + "/rejects.jsonl", encoding: .utf8).split(separator: "\n")
        let lines = try rejects.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.map { $0["line"] as? Int } == [3, 4])
        #expect(lines.allSatisfy { ($0["reason"] as? String)?.contains("field \"occurredAt\"") == true })
        #expect(
            (lines[0]["reason"] as? String)?.contains("1022-05-18T08:00:00+07:00 is outside the accepted window")
                == true)
        // Configurable (`sameday publish --earliest-event …`): a later start refuses the 2000-01-01 event too.
        publisher.eventBounds.earliest = LocalDate(year: 2020, month: 1, day: 1)!.startInstant
        publisher.rejectsPath = nil
        #expect(try publisher.run(input: input).rejected == 3)
    }

    @Test("a rescheduled event whose new due date is years away is refused, naming newDueAt")
    func rescheduleWindow() throws {
        let p = try profile(
            vietnameseProfileJSON.replacingOccurrences(
                of: #""Hình thức"}"#, with: #""Hình thức", "newDueAt": "Hẹn mới"}"#
            )
            .replacingOccurrences(
                of: #""Đang xử lý": "skip"}"#, with: #""Đang xử lý": "skip", "Hẹn lại": "rescheduled"}"#))
        let mapper = try RecordMapper(
            profile: p, configuration: hcmc, names: SameDayProducerNames(), header: Self.header + ["Hẹn mới"],
            now: RFC3339.parse("2022-05-20T00:00:00+07:00")!)
        func map(_ due: String) -> MappedRecord {
            mapper.map(
                SourceRecord(
                    line: 2, endOffset: 0, text: [],
                    fields: [
                        "760-220518-0001", "2.000815.000.00.00.H29", "760", "Hẹn lại", "18/05/2022 08:00:00", "", due,
                    ], syntaxError: nil))
        }
        _ = try #require(map("20/05/2022 17:00:00").mappedEvent)
        let reason = try #require(map("31/12/9999 17:00:00").rejection)
        #expect(reason.contains("field \"newDueAt\"") && reason.contains("366 days"))
    }

    @Test("the receiver refuses events outside the window with 400 naming the field")
    func receiverTimeWindow() async throws {
        try await withDryRunReceiver(customize: { $0.now = { RFC3339.parse("2022-05-20T00:00:00+07:00")! } }) {
            client in
            let old = eventJSON("old").replacingOccurrences(of: "2022-05-18T08:15:00", with: "1022-05-18T08:15:00")
            let future = eventJSON("future").replacingOccurrences(
                of: "2022-05-18T08:15:00", with: "2022-05-22T08:15:00")
            let far = eventJSON("far", type: "rescheduled", extra: #","newDueAt":"2042-05-18T17:00:00+07:00""#)
            let (status, body) = try await post(client, "[\(eventJSON("ok")), \(old), \(future), \(far)]")
            #expect(status == .badRequest)
            let errors =
                (try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any])["errors"]
                as! [[String: Any]]
            #expect(errors.map { $0["index"] as? Int } == [1, 2, 3])
            #expect(errors.map { $0["field"] as? String } == ["occurredAt", "occurredAt", "newDueAt"])
            #expect((errors[0]["message"] as? String)?.contains("outside the accepted window") == true)
        }
    }

    // MARK: 2. Tenant isolation: a dossier code belongs to its unit

    @Test("the file adapter refuses a dossier code that is not its unit's")
    func fileAdapterForeignDossier() throws {
        let mapper = try RecordMapper(
            profile: try profile(vietnameseProfileJSON), configuration: hcmc, names: SameDayProducerNames(),
            header: Self.header)
        func map(_ dossier: String, unit: String = "760") -> MappedRecord {
            mapper.map(
                SourceRecord(
                    line: 2, endOffset: 0, text: [],
                    fields: [dossier, "2.000815.000.00.00.H29", unit, "Đã tiếp nhận", "18/05/2022 08:00:00", ""],
                    syntaxError: nil))
        }
        _ = try #require(map("760-220518-0001").mappedEvent)
        _ = try #require(map("000.00.18.H29-220518-0001", unit: "000.00.18.H29").mappedEvent)
        let other = try #require(map("000.00.15.H29-220518-0042").rejection)
        #expect(
            other
                == #"column "Mã hồ sơ": dossier "000.00.15.H29-220518-0042" belongs to unit "000.00.15.H29" (its prefix), not to the event's unit "760", and interlevel.csv declares no such pair"#
        )
        let shapeless = try #require(map("HS-42").rejection)
        #expect(shapeless.contains("is not of the form <unit>-<yymmdd>-<number>"))
        // A prefix that only starts like the unit is another unit: 7601 is not 760.
        _ = try #require(map("7601-220518-0001").rejection)
    }

    @Test("a control character in any mapped CSV field is refused, naming the column")
    func fileAdapterControlCharacters() throws {
        let mapper = try RecordMapper(
            profile: try profile(vietnameseProfileJSON), configuration: hcmc, names: SameDayProducerNames(),
            header: Self.header)
        func map(_ fields: [String]) -> MappedRecord {
            mapper.map(SourceRecord(line: 2, endOffset: 0, text: [], fields: fields, syntaxError: nil))
        }
        let good = ["760-220518-0001", "2.000815.000.00.00.H29", "760", "Đã tiếp nhận", "18/05/2022 08:00:00", ""]
        _ = try #require(map(good).mappedEvent)
        for (index, column) in [(0, "Mã hồ sơ"), (1, "Mã thủ tục"), (3, "Trạng thái")] {
            var fields = good
            fields[index].insert("\u{0}", at: fields[index].index(after: fields[index].startIndex))
            guard case .rejected(let why) = map(fields) else {
                Issue.record("a NUL in \(column) was accepted")
                continue
            }
            #expect(why.hasPrefix("column \"\(column)\""), "\(why)")
            #expect(why.contains("control character") && why.contains("\\u{0}"))
        }
    }

    @Test("the receiver refuses, with 400 on field dossier, a dossier code of another unit under the caller's unit")
    func receiverForeignDossier() async throws {
        try await withDryRunReceiver { client in
            let stolen = eventJSON("stolen").replacingOccurrences(
                of: #""dossier":"760-220518-0001""#, with: #""dossier":"769-220518-0001""#)
            var (status, body) = try await post(client, "[\(eventJSON("mine")), \(stolen)]")
            #expect(status == .badRequest)
            let errors =
                (try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any])["errors"]
                as! [[String: Any]]
            #expect(errors.count == 1 && errors[0]["index"] as? Int == 1 && errors[0]["field"] as? String == "dossier")
            #expect((errors[0]["message"] as? String)?.contains("belongs to unit \"769\"") == true)
            // The unit itself is another system's: 403 as before.
            (status, body) = try await post(client, eventJSON("theirs", unit: "769"))
            #expect(status == .forbidden && body.contains("(26734, 760)"))
        }
    }

    // MARK: 6. Files

    @Test("rejects files are owner-only (0600), even one an older version left 0644")
    func rejectsArePrivate() throws {
        let dir = temporaryFolder("rejects-mode")
        let input = dir + "/export.csv"
        write("Mã hồ sơ;Mã thủ tục;Mã đơn vị;Trạng thái;Thời gian;Hình thức\nx;y;760;?;?;\n", to: input)
        for preexisting in [false, true] {
            let rejects = dir + "/rejects-\(preexisting).jsonl"
            if preexisting {
                write("", to: rejects)
                chmod(rejects, 0o644)
            }
            let publisher = FilePublisher(profile: try profile(vietnameseProfileJSON), configuration: hcmc, sink: nil)
            publisher.rejectsPath = rejects
            #expect(try publisher.run(input: input).rejected == 1)
            var info = stat()
            #expect(stat(rejects, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")
        }
    }

    @Test("the spool takes an exclusive lock and says which process holds it")
    func spoolLock() throws {
        let dir = temporaryFolder("spool-lock")
        do {
            let first = try Spool(directory: dir)
            #expect {
                _ = try Spool(directory: dir)
            } throws: { error in
                let text = "\(error)"
                return text.contains("spool \(dir) is in use by another process (process \(getpid())")
                    && text.contains("give this one its own --spool")
            }
            // `sameday publish --status` reads it meanwhile, without the lock, and says who holds it.
            try first.append([SpoolTests.event(1), SpoolTests.event(2)])
            let (status, holder) = try Spool.inspect(directory: dir)
            #expect(status.pendingEvents == 2 && status.pendingBytes > 0)
            #expect(holder?.hasPrefix("process \(getpid())") == true)
        }
        #expect(try Spool.inspect(directory: dir).holder == nil)
        // Released with the object (and by the kernel when a process dies).
        _ = try Spool(directory: dir)
    }

    @Test("the checkpoint fingerprints the whole consumed prefix: a change after the first 4 KiB is another file")
    func fingerprintWholePrefix() throws {
        let dir = temporaryFolder("prefix")
        let input = dir + "/export.csv"
        write(exportText(rows: 3000), to: input)
        let spool = try Spool(directory: dir + "/spool")
        try crashedRun(input, spool: spool, after: 2000)
        // Same size, same first 4 KiB; one time changed at about byte 10,000, well inside the checkpointed part.
        var bytes = [UInt8](FileManager.default.contents(atPath: input)!)
        let at = bytes[10_000...].firstIndex(of: UInt8(ascii: "/"))!
        bytes[at - 2] = UInt8(ascii: "1")
        bytes[at - 1] = UInt8(ascii: "9")
        _ = FileManager.default.createFile(atPath: input, contents: Data(bytes))
        let summary = try spooledRun(input, spool: spool)
        #expect(summary.resumedAtLine == nil && summary.staleCheckpoint != nil, "not resumed: the prefix changed")
        #expect(summary.spooled == 3000)
    }

    @Test("a file that only grew resumes from its checkpoint")
    func appendedFileResumes() throws {
        let dir = temporaryFolder("grown")
        let input = dir + "/export.csv"
        write(exportText(rows: 3000), to: input)
        let spool = try Spool(directory: dir + "/spool")
        try crashedRun(input, spool: spool, after: 2000)
        let handle = FileHandle(forWritingAtPath: input)!
        handle.seekToEndOfFile()
        handle.write(Data(exportText(rows: 10, first: 5000).split(separator: "\r\n", maxSplits: 1)[1].utf8))
        try handle.close()
        let summary = try spooledRun(input, spool: spool)
        let line = try #require(summary.resumedAtLine)
        #expect(line > 1 && summary.staleCheckpoint == nil)
        #expect(summary.spooled == 3010 - (line - 2))
    }

    @Test("durable writes check every result: a full disk is an error with the file's name, not a silent loss")
    func durableWritesAreChecked() throws {
        let fd = open("/dev/full", O_WRONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect {
            try DurableFile.writeAll(fd, Array("event\n".utf8), path: "/dev/full")
        } throws: { error in
            "\(error)".contains("/dev/full: write failed (No space left on device)")
        }
        let dir = temporaryFolder("durable")
        try DurableFile.writeAtomically(Array("1\n".utf8), to: dir + "/offset")
        #expect(FileManager.default.contents(atPath: dir + "/offset") == Data("1\n".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["offset"], "no temporary file left")
        #expect(throws: FileError.self) { try DurableFile.writeAtomically([1], to: dir + "/missing/offset") }
    }

    @Test("a secret file is read only when its owner alone has access; the error names the file and the fix")
    func secretFileMode() throws {
        let dir = temporaryFolder("secret")
        let file = dir + "/store.password"
        write("s3cret\n", to: file)
        for mode: mode_t in [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o601] {
            chmod(file, mode)
            let expected =
                "\(file): mode \(String(mode, radix: 8)) gives group or others access to the store password; "
                + "chmod 600 \(file)"
            #expect {
                try SecretFile.read(file, holding: "the store password")
            } throws: { error in
                "\(error)" == expected
            }
            #expect {
                try SecretFile.checkPermissions(file, holding: "the store password")
            } throws: { error in
                "\(error)" == expected
            }
        }
        for mode: mode_t in [0o600, 0o400] {
            chmod(file, mode)
            #expect(try SecretFile.read(file, holding: "the store password") == "s3cret\n")
            try SecretFile.checkPermissions(file, holding: "the store password")
        }
        #expect {
            try SecretFile.read(dir, holding: "the store password")
        } throws: { error in
            "\(error)".hasPrefix("\(dir): ")
        }
        #expect {
            try SecretFile.checkPermissions(dir + "/missing", holding: "the store password")
        } throws: { error in
            "\(error)".hasPrefix("\(dir)/missing: cannot read the store password (")
        }
        write(String(repeating: "x", count: SecretFile.maximumBytes + 1), to: file)
        chmod(file, 0o600)
        #expect {
            try SecretFile.read(file, holding: "the store password")
        } throws: { error in
            "\(error)".contains("at most 4096 bytes")
        }
    }

    @Test("incremental SHA-256 over pieces equals the one-shot digest")
    func incrementalHash() {
        let data = [UInt8]((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        for cut in [0, 1, 55, 56, 63, 64, 65, 127, 4096, 4999, 5000] {
            var hasher = SHA256.Hasher()
            hasher.update(Array(data[..<cut]))
            let middle = hasher.finalize()
            hasher.update(Array(data[cut...]))
            #expect(hasher.finalize() == SHA256.hex(data))
            #expect(middle == SHA256.hex(data[..<cut]))
        }
        #expect(SHA256.Hasher().finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
