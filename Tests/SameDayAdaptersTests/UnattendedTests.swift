import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayReceiver
import SameDayTestKit
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A District 1 export of `rows` rows (received / resolved pairs), dossiers numbered from `first`, times from
/// `hour`: the same shape as a scheduled export that is rewritten every run.
func exportText(rows: Int, first: Int = 0, hour: Int = 9) -> String {
    var lines = ["Mã hồ sơ;Mã thủ tục;Mã đơn vị;Trạng thái;Thời gian;Hình thức"]
    for i in 0..<rows {
        let status = i % 2 == 0 ? "Đã tiếp nhận" : "Đã có kết quả"
        let time = String(format: "%02d:%02d:00", hour, i % 60)
        lines.append(
            "760-220518-\(String(format: "%04d", first + i / 2));2.000815.000.00.00.H29;760;\(status);18/05/2022 \(time);Trực tiếp"
        )
    }
    return lines.joined(separator: "\r\n") + "\r\n"
}

/// A file run that crashes (as a killed process would) after `records`, leaving its checkpoint.
func crashedRun(_ input: String, spool: Spool, after records: Int) throws {
    let sink = DurablePublisher(
        publisher: stoppedBroker(name: "crashed-run"), spool: spool, configuration: hcmc,
        names: SameDayProducerNames())
    defer { sink.close() }
    let run = FilePublisher(profile: try profile(vietnameseProfileJSON), configuration: hcmc, sink: sink)
    run.crashAfterRecords = records
    run.checkpointEvery = 256
    #expect(throws: AdapterError.self) { try run.run(input: input) }
}

func spooledRun(_ input: String, spool: Spool, notices: Collected<String>? = nil) throws -> PublishSummary {
    let sink = DurablePublisher(
        publisher: stoppedBroker(name: "spooled-run"), spool: spool, configuration: hcmc,
        names: SameDayProducerNames())
    defer { sink.close() }
    let run = FilePublisher(profile: try profile(vietnameseProfileJSON), configuration: hcmc, sink: sink)
    run.onNotice = { notices?.append($0) }
    return try run.run(input: input)
}

@Suite("Adapters a unit can run unattended (issue 13; no broker)")
struct UnattendedTests {
    // MARK: 1. Checkpoints of rewritten exports

    @Test(
        "a rewritten export: the old checkpoint is set aside (named, logged) and the new file is published from the start"
    )
    func rewrittenExport() throws {
        let dir = temporaryFolder("rewritten")
        let input = dir + "/export.csv"
        write(exportText(rows: 3000), to: input)
        let spool = try Spool(directory: dir + "/spool")
        try crashedRun(input, spool: spool, after: 2000)
        #expect(FileManager.default.fileExists(atPath: input + ".checkpoint"))
        // The next scheduled export rewrites the file: the last hour again, shifted by 15 minutes.
        write(exportText(rows: 2500, first: 700, hour: 10), to: input)
        let notices = Collected<String>()
        let summary = try spooledRun(input, spool: spool, notices: notices)
        #expect(summary.resumedAtLine == nil && summary.spooled == 2500 && summary.rejected == 0)
        let stale = try #require(summary.staleCheckpoint)
        #expect(stale.hasPrefix(input + ".checkpoint.stale-") && FileManager.default.fileExists(atPath: stale))
        #expect(!FileManager.default.fileExists(atPath: input + ".checkpoint"), "the finished run removed its own")
        #expect(notices.all.count == 1 && notices.all[0].contains("set aside as \(stale)"))
        #expect(notices.all[0].contains("publishing \(input) from the start"))
        #expect(summary.description.contains("from the start: the file changed since its checkpoint"))
    }

    @Test("a checkpoint of an older sameday (4 KiB fingerprint) is set aside too, not a dead end")
    func oldCheckpointFormat() throws {
        let dir = temporaryFolder("old-checkpoint")
        let input = dir + "/export.csv"
        write(exportText(rows: 10), to: input)
        write(#"{"fingerprint":"00","offset":70,"line":2}"# + "\n", to: input + ".checkpoint")
        let notices = Collected<String>()
        let summary = try spooledRun(input, spool: try Spool(directory: dir + "/spool"), notices: notices)
        #expect(summary.spooled == 10 && summary.staleCheckpoint != nil)
        #expect(notices.all.first?.contains("written by an older version of sameday") == true)
    }

    @Test(
        "the documented timer command over a rewritten export after a SIGKILL mid-file: the next run publishes it (exit 0)"
    )
    func timerAfterSIGKILL() throws {
        let dir = temporaryFolder("timer")
        write(vietnameseProfileJSON, to: dir + "/motcua.json")
        // The broker is unreachable (nothing listens on this loopback port): events go to the spool, which is what
        // makes the run long enough to be killed in the middle; the checkpoint works the same with a broker.
        writeSecret("amqp://guest:guest@127.0.0.1:5699/%2F\n", to: dir + "/motcua.amqp")
        write(exportText(rows: 40_000), to: dir + "/export.csv")
        // docs/adapters.md, "Run it on a schedule": the service's ExecStart.
        let command = [
            "publish", "--profile", dir + "/motcua.json", "--config", repoPath("deploy/config/hcmc-2022"),
            "--url-file", dir + "/motcua.amqp", "--spool", dir + "/spool", dir + "/export.csv",
        ]
        let first = try startSameday(command, in: dir, environment: environmentWithoutBroker())
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: dir + "/export.csv.checkpoint") && first.isRunning
            && Date() < deadline
        {
            usleep(5_000)
        }
        #expect(first.isRunning, "the run must still be mid-file when it is killed")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal)
        let checkpoint = try String(contentsOfFile: dir + "/export.csv.checkpoint", encoding: .utf8)
        #expect(checkpoint.contains("\"prefixSHA256\""))

        // Fifteen minutes later the export tool rewrites export.csv, then the timer runs the same command.
        write(exportText(rows: 3000, first: 19_000, hour: 10), to: dir + "/export.csv")
        let second = try runSameday(command, in: dir, environment: environmentWithoutBroker())
        #expect(second.status == 0, "\(second.errors)")
        #expect(second.errors.contains("changed since this checkpoint was written"))
        #expect(second.errors.contains("set aside as \(dir)/export.csv.checkpoint.stale-"))
        #expect(second.output.contains("export.csv: 0 published, 3000 spooled, 0 rejected, 0 skipped"))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(names.contains { $0.hasPrefix("export.csv.checkpoint.stale-") })
        #expect(!names.contains("export.csv.checkpoint"))
    }

    // MARK: 2. Seeing the events

    @Test("`sameday publish --dry-run --show N` prints the first N canonical events with their routing keys")
    func dryRunShow() throws {
        let dir = temporaryFolder("show")
        let run = try runSameday(
            [
                "publish", "--profile", repoPath("deploy/adapters/profiles/motcua-q1.json"), "--config",
                repoPath("deploy/config/hcmc-2022"), "--dry-run", "--show", "2",
                repoPath("deploy/adapters/samples/motcua-q1-2022-05-18.csv"),
            ], in: dir)
        #expect(run.status == 2, "the sample has two rejected rows")
        let lines = run.output.split(separator: "\n").filter { $0.contains(" → ") }
        #expect(lines.count == 2)
        #expect(
            lines[0].contains(
                "motcua-q1-2022-05-18.csv:2 → district.760.received {\"schema\":\"sameday.dossier-event/1\""))
        #expect(lines[0].contains("\"dossier\":\"760-220518-0001\"") && !lines[0].contains("Nguyễn"))
        #expect(lines[1].contains(":3 → district.760.resolved "))
        #expect(run.output.contains("dry run: "))
    }

    @Test("`sameday receive --dry-run` answers with the events it would publish, and publishes nothing")
    func receiverDryRun() async throws {
        try await withDryRunReceiver { client in
            var (status, body) = try await post(client, "[\(eventJSON("d-1")), \(eventJSON("d-2", unit: "26734"))]")
            #expect(status == .ok)
            let answer = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
            #expect(answer["dryRun"] as? Bool == true && answer["accepted"] as? Int == 2)
            let events = answer["events"] as! [[String: Any]]
            #expect(events.map { $0["routingKey"] as? String } == ["district.760.received", "commune.26734.received"])
            #expect((events[0]["event"] as? [String: Any])?["eventId"] as? String == "d-1")
            // The same checks as for real: an invalid event is still a 400.
            (status, body) = try await post(client, eventJSON("d-3", type: "finished"))
            #expect(status == .badRequest && body.contains("unknown event type"))
            let health = try await client.execute(uri: "/healthz", method: .get) { String(buffer: $0.body) }
            #expect(health.contains("dry run"))
        }
    }

    // MARK: 3. The receiver's log and health

    @Test("access log: one structured line per request, 401/403/413 included; never a body or a token")
    func accessLog() async throws {
        let dir = temporaryFolder("access-log")
        let log = Collected<AccessRecord>()
        try await withReceiver(
            publisher: stoppedBroker(name: "access-log"), names: SameDayProducerNames(),
            spoolDir: dir + "/spool", maxBody: 4096, customize: { $0.accessLog = { log.append($0) } }
        ) { client, _ in
            _ = try await post(client, eventJSON("x"), token: "wrong-token")
            _ = try await post(client, "[" + (0..<40).map { eventJSON("big-\($0)") }.joined(separator: ",") + "]")
            _ = try await post(client, "[\(eventJSON("q1")), \(eventJSON("td", unit: "769"))]")
            _ = try await post(client, eventJSON("ok-1"))
            _ = try await client.execute(uri: "/healthz?token=secret", method: .get) { _ in }
        }
        let records = log.all
        #expect(records.map(\.status) == [401, 413, 403, 202, 200])
        #expect(records.map(\.unitSystem) == [nil, "motcua-q1", "motcua-q1", "motcua-q1", nil])
        #expect(records[2].events == 2 && records[3].events == 1)
        #expect(records.allSatisfy { $0.method == "POST" || $0.path == "/healthz" })
        #expect(records[4].path == "/healthz", "the path only: no query string")
        let lines = records.map(\.json)
        #expect(lines.allSatisfy { !$0.contains(q1Token) && !$0.contains("wrong-token") && !$0.contains("secret") })
        #expect(lines.allSatisfy { !$0.contains("occurredAt") && !$0.contains("2.000815") }, "never a body")
        let parsed = try JSONSerialization.jsonObject(with: Data(lines[2].utf8)) as! [String: Any]
        #expect(parsed["log"] as? String == "access" && parsed["status"] as? Int == 403)
        #expect(parsed["durationMs"] is NSNumber && parsed["time"] is String)
    }

    @Test("/healthz tells the default local broker from a configured one, and never shows the password")
    func healthzBroker() async throws {
        let dir = temporaryFolder("healthz")
        var connection = try ConnectionConfiguration(urls: ["amqp://adapter.q1:s3cret@127.0.0.1:5699/sameday"])
        let configured = BrokerTarget(connection: connection, configuredBy: "brokerURLFile /etc/sameday/receiver.amqp")
        connection = try ConnectionConfiguration(urls: ["amqp://127.0.0.1:5672/%2F"])
        let fallback = BrokerTarget(connection: connection, configuredBy: nil)
        for (target, expected) in [
            (configured, "\"brokerConfigured\":\"yes\""), (fallback, "\"brokerConfigured\":\"no"),
        ] {
            let health = try await withReceiver(
                publisher: stoppedBroker(name: "healthz"), names: SameDayProducerNames(),
                spoolDir: dir + "/spool-\(target.isDefault)", customize: { $0.broker = target }
            ) { client, _ in
                try await client.execute(uri: "/healthz", method: .get) { String(buffer: $0.body) }
            }
            #expect(health.contains(expected), "\(health)")
            #expect(!health.contains("s3cret"))
        }
        #expect(configured.description.contains("vhost \"sameday\" as user \"adapter.q1\""))
        #expect(!configured.description.contains("s3cret"))
        #expect(fallback.description.contains("DEFAULT local broker"))
    }

    @Test("`sameday receive` says at start which broker it publishes to (host, vhost, user; no password)")
    func startupLine() throws {
        let dir = temporaryFolder("startup")
        let receiverJSON = """
            {"config": "\(repoPath("deploy/config/hcmc-2022"))", "unitSystems": "\(repoPath("deploy/adapters/unit-systems.json"))",
             "spool": {"directory": "spool"}, "brokerURLFile": "receiver.amqp"}
            """
        write(receiverJSON, to: dir + "/receiver.json")
        writeSecret("amqp://receiver.q1:s3cret@127.0.0.1:5699/sameday\n", to: dir + "/receiver.amqp")
        write(
            receiverJSON.replacingOccurrences(of: #", "brokerURLFile": "receiver.amqp""#, with: ""),
            to: dir + "/default.json")
        write(receiverJSON.replacingOccurrences(of: "brokerURLFile", with: "brokerUrlFile"), to: dir + "/typo.json")
        for (file, expected) in [
            (
                "receiver.json",
                "publishing to amqp://127.0.0.1:5699 vhost \"sameday\" as user \"receiver.q1\" (from brokerURLFile"
            ),
            ("default.json", "DEFAULT local broker"),
        ] {
            let process = try startSameday(
                ["receive", "--config", dir + "/" + file, "--listen", "127.0.0.1:0"], in: dir,
                environment: demoEnvironment())
            let deadline = Date().addingTimeInterval(60)
            var errors = ""
            while process.isRunning && Date() < deadline && !errors.contains("\n") {
                usleep(20_000)
                errors = (try? String(contentsOfFile: dir + "/.stderr", encoding: .utf8)) ?? ""
            }
            process.terminate()
            process.waitUntilExit()
            #expect(errors.contains(expected), "\(errors)")
            #expect(!errors.contains("s3cret"))
        }
        let typo = try runSameday(["receive", "--config", dir + "/typo.json"], in: dir)
        #expect(
            typo.status == 1 && typo.errors.contains(#"typo.json:2:52: key "brokerUrlFile": unknown key (allowed: "#))
    }

    // MARK: 4. Messages

    @Test(
        "impossible dates and times say \"no such date\" when the format matches",
        arguments: [
            ("32/05/2022 08:00:00", "no such date: May 2022 has 31 days"),
            ("29/02/2022 08:00:00", "no such date: February 2022 has 28 days (2022 is not a leap year)"),
            ("18/05/2022 24:00:00", "no such time: 24:00 is not a time of day"),
            ("18/13/2022 08:00:00", "no such date: there is no month 13"),
            ("18/05/2022 08:61", "no such time: minute 61"),
            ("2022-02-29T08:00:00+07:00", "no such date: February 2022 has 28 days"),
            ("18.05.2022 08:00", "matches none of the time formats"),
        ])
    func impossibleDates(text: String, expected: String) throws {
        let p = try profile(
            vietnameseProfileJSON.replacingOccurrences(
                of: #""timeFormats": ["dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm"]"#,
                with: #""timeFormats": ["dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm", "rfc3339"]"#))
        let header = ["Mã hồ sơ", "Mã thủ tục", "Mã đơn vị", "Trạng thái", "Thời gian", "Hình thức"]
        let mapper = try RecordMapper(
            profile: p, configuration: hcmc, names: SameDayProducerNames(), header: header)
        let record = SourceRecord(
            line: 2, endOffset: 0, text: [],
            fields: ["760-220518-0001", "2.000815.000.00.00.H29", "760", "Đã tiếp nhận", text, ""], syntaxError: nil)
        let reason = try #require(mapper.map(record).rejection, "\(text) must be rejected")
        #expect(reason.contains(expected), "\(reason)")
    }

    @Test("a truncated or broken profile names the line and column")
    func profileLineAndColumn() {
        let truncated = "{\n  \"source\": \"x\",\n  \"format\": \"csv\",\n  \"columns\": {\"dossier\": \"Mã"
        #expect {
            _ = try profile(truncated)
        } throws: { error in
            "\(error)".contains("test.json:4:26: not valid JSON: this string has no closing quote")
        }
        #expect {
            _ = try profile("{\n  \"source\": \"x\"\n  \"format\": \"csv\"\n}")
        } throws: { error in
            "\(error)".contains("test.json:3:3: not valid JSON: expected ',' or '}'; unexpected \"\"\"")
        }
        #expect {
            _ = try profile("{\"source\": \"x\",")
        } throws: { error in
            "\(error)".contains(
                "test.json:1:16: not valid JSON: expected a key in double quotes; the file ends too early")
        }
    }

    @Test("a unit outside the profile's units is refused with the allowed units listed")
    func allowedUnitsListed() throws {
        let p = try profile(
            vietnameseProfileJSON.replacingOccurrences(
                of: #""format": "csv","#, with: #""format": "csv", "units": ["760", "26734"],"#))
        let header = ["Mã hồ sơ", "Mã thủ tục", "Mã đơn vị", "Trạng thái", "Thời gian", "Hình thức"]
        let mapper = try RecordMapper(
            profile: p, configuration: hcmc, names: SameDayProducerNames(), header: header)
        let record = SourceRecord(
            line: 2, endOffset: 0, text: [],
            fields: ["769-220518-0001", "2.000815.000.00.00.H29", "769", "Đã tiếp nhận", "18/05/2022 08:00", ""],
            syntaxError: nil)
        let reason = try #require(mapper.map(record).rejection)
        #expect(reason == #"unit "769" is not one of this unit system's units (profile "units": 26734, 760)"#)
    }

    @Test("a refused request names every personal-data field, not only the first")
    func everyPersonalField() async throws {
        try await withDryRunReceiver { client in
            let (status, body) = try await post(
                client,
                "[\(eventJSON("ok")), \(eventJSON("pd", extra: #","fullName":"Nguyễn Văn An","cccd":"079123456789","phone":"0901234567""#))]"
            )
            #expect(status == .badRequest)
            let errors =
                (try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any])["errors"]
                as! [[String: Any]]
            #expect(errors.map { $0["field"] as? String } == ["fullName", "cccd", "phone"])
            #expect(errors.allSatisfy { $0["index"] as? Int == 1 })
            #expect(!body.contains("Nguyễn") && !body.contains("079123456789"))
        }
    }

    @Test("an element with 90,000 keys: named as not an event in one pass, not sorted by substring scans")
    func manyKeys() async throws {
        // About 1 MiB: the old key sort did two substring scans of the element per comparison (~10^12 bytes).
        let keys = (0..<90_000).map { #""k\#($0)":0"# }.joined(separator: ",")
        let element = Array("{\(keys),\"phone\":\"0901234567\"}".utf8)
        let found = try #require(DossierEvent.personalDataKeys(element))
        #expect(found.tooMany && found.keys.isEmpty)
        let few = Array(#"{"a":1,"phone":"x","b":2,"cccd":"y"}"#.utf8)
        #expect(DossierEvent.personalDataKeys(few)?.keys == ["phone", "cccd"])
        try await withDryRunReceiver { client in
            let (status, body) = try await post(client, String(decoding: element, as: UTF8.self))
            #expect(status == .badRequest)
            #expect(body.contains("more than \(DossierEvent.maxKeysNamed) keys"))
        }
    }

    @Test("usage errors exit with status 1 and a message (one policy: the README's \"exit status 1\")")
    func usageErrors() throws {
        let dir = temporaryFolder("usage")
        for (arguments, message) in [
            (["publish", "--profile", "p.json", "x.csv"], "sameday publish: --config DIR is required"),
            (["publish", "--config", "c"], "sameday publish: --profile FILE is required"),
            (["receive"], "sameday receive: --config FILE is required"),
            (["receive", "--config", "r.json", "--listen", "8080"], "--listen \"8080\": expected HOST:PORT"),
        ] {
            let run = try runSameday(arguments, in: dir)
            #expect(run.status == 1, "\(arguments)")
            #expect(run.errors.contains(message), "\(run.errors)")
        }
    }

    // MARK: 5. Tokens

    @Test("--hash-token reads the token from standard input only")
    func hashTokenFromStandardInput() throws {
        let dir = temporaryFolder("hash-token")
        let run = try runSameday(["receive", "--hash-token"], in: dir, input: "demo-token-motcua-q1\n")
        #expect(run.status == 0)
        #expect(run.output == SHA256.hex(Array("demo-token-motcua-q1".utf8)) + "\n")
        // The shipped registry's demo hash is this token's.
        #expect(run.output.hasPrefix("b4f373250b3e822b57993d958379a13b1c6bc59d17f30239243e855a7537c141"))
        let onCommandLine = try runSameday(["receive", "--hash-token", "demo-token-motcua-q1"], in: dir)
        #expect(onCommandLine.status != 0 && onCommandLine.output.isEmpty)
        let empty = try runSameday(["receive", "--hash-token"], in: dir, input: "")
        #expect(empty.status == 1 && empty.errors.contains("standard input holds no token"))
    }

    // MARK: 6. Secrets

    @Test("the shipped registry's demo token hashes are refused unless SAMEDAY_DEMO=1, naming each system and the file")
    func demoTokens() throws {
        let shipped = repoPath("deploy/adapters/unit-systems.json")
        #expect {
            try UnitSystemRegistry.load(path: shipped, allowDemoTokens: false)
        } throws: { error in
            "\(error)".hasPrefix(
                "\(shipped): unit system \"motcua-q1\" has the tokenSHA256 of the shipped demo token "
                    + "demo-token-motcua-q1; unit system \"dvc-so-tu-phap\" has the tokenSHA256 of the shipped demo "
                    + "token demo-token-dvc-so-tu-phap, which anyone can read in the repository: give each system a "
                    + "token of its own (printf %s \"$TOKEN\" | sameday receive --hash-token) or, for a demonstration "
                    + "only, set SAMEDAY_DEMO=1")
        }
        #expect(try UnitSystemRegistry.load(path: shipped, allowDemoTokens: true).systems.count == 2)
        let dir = temporaryFolder("demo-tokens")
        let own = SHA256.hex(Array("a-token-of-its-own".utf8))
        write(
            #"{"unitSystems": [{"name": "motcua-q1", "units": ["760"], "tokenSHA256": "\#(own)"}]}"#,
            to: dir + "/own.json")
        #expect(try UnitSystemRegistry.load(path: dir + "/own.json", allowDemoTokens: false).systems.count == 1)

        // `sameday receive` stops at start on the shipped registry, unless it is a demonstration.
        write(
            """
            {"config": "\(repoPath("deploy/config/hcmc-2022"))", "unitSystems": "\(shipped)", "spool": {"directory": "spool"}}
            """, to: dir + "/receiver.json")
        var environment = environmentWithoutBroker()
        environment["SAMEDAY_DEMO"] = nil
        let refused = try runSameday(
            ["receive", "--config", dir + "/receiver.json", "--dry-run", "--listen", "127.0.0.1:0"], in: dir,
            environment: environment)
        #expect(refused.status == 1)
        #expect(
            refused.errors.contains("\(shipped): unit system \"motcua-q1\" has the tokenSHA256 of the shipped demo"),
            "\(refused.errors)")
        let demo = try startSameday(
            ["receive", "--config", dir + "/receiver.json", "--dry-run", "--listen", "127.0.0.1:0"], in: dir,
            environment: demoEnvironment())
        let deadline = Date().addingTimeInterval(60)
        var errors = ""
        while demo.isRunning && Date() < deadline && !errors.contains("DRY RUN") {
            usleep(20_000)
            errors = (try? String(contentsOfFile: dir + "/.stderr", encoding: .utf8)) ?? ""
        }
        demo.terminate()
        demo.waitUntilExit()
        #expect(errors.contains("DRY RUN"), "\(errors)")
    }

    @Test("a broker URL file that group or others may access is refused by publish, receive and alerts watch")
    func urlFileMode() throws {
        let dir = temporaryFolder("url-file-mode")
        write(vietnameseProfileJSON, to: dir + "/motcua.json")
        write(exportText(rows: 2), to: dir + "/export.csv")
        let file = dir + "/motcua.amqp"
        write("amqp://adapter.q1:s3cret@127.0.0.1:5699/%2F\n", to: file)
        chmod(file, 0o640)
        let expected =
            "\(file): mode 640 gives group or others access to the broker URL and its password; chmod 600 \(file)"
        let publish = try runSameday(
            [
                "publish", "--profile", dir + "/motcua.json", "--config", repoPath("deploy/config/hcmc-2022"),
                "--url-file", file, "--spool", dir + "/spool", dir + "/export.csv",
            ], in: dir, environment: environmentWithoutBroker())
        #expect(publish.status == 1 && publish.errors.contains("sameday: --url-file: " + expected), "\(publish.errors)")
        #expect(!publish.output.contains("spooled"), "nothing published nor spooled")

        write(
            """
            {"config": "\(repoPath("deploy/config/hcmc-2022"))", "unitSystems": "\(repoPath("deploy/adapters/unit-systems.json"))",
             "spool": {"directory": "spool"}, "brokerURLFile": "motcua.amqp"}
            """, to: dir + "/receiver.json")
        let receive = try runSameday(
            ["receive", "--config", dir + "/receiver.json", "--dry-run", "--listen", "127.0.0.1:0"], in: dir,
            environment: demoEnvironment())
        #expect(receive.status == 1)
        #expect(
            receive.errors.contains("\(dir)/receiver.json:2:52: key \"brokerURLFile\": " + expected),
            "\(receive.errors)")

        let watch = try runSameday(
            ["alerts", "watch", "--url-file", file, "--config", repoPath("deploy/config/hcmc-2022")], in: dir,
            environment: environmentWithoutBroker())
        #expect(watch.status == 1 && watch.errors.contains("sameday: --url-file: " + expected), "\(watch.errors)")
    }
}
