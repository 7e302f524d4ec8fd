import Foundation
import Testing

/// The `sameday` commands over the core, as a person runs them: the happy path and bad input.
@Suite("sameday commands")
struct CommandLineTests {
    func events(_ lines: [String]) throws -> String {
        let path = temporaryFolder("cli") + "/events.jsonl"
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    let received =
        #"{"schema":"sameday.dossier-event/1","eventId":"e1","dossier":"760-220520-0001","unit":"760","procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"2022-05-20T15:01:00+07:00","channel":"direct","source":"test"}"#
    let resolved =
        #"{"schema":"sameday.dossier-event/1","eventId":"e2","dossier":"760-220520-0001","unit":"760","procedure":"2.000815.000.00.00.H29","type":"resolved","occurredAt":"2022-05-23T16:00:00+07:00","outcome":"approved","source":"test"}"#

    @Test("deadline: Friday 15:01 on the standard calendar is due Monday 17:00")
    func deadline() throws {
        let run = try runSameday([
            "deadline", "--config", hcmcConfiguration, "--unit", "760", "--procedure", "2.000815.000.00.00.H29",
            "--received", "2022-05-20T15:01:00+07:00",
        ])
        #expect(run.status == 0)
        #expect(run.output.contains(#""due":"2022-05-23T17:00:00+07:00""#))
        #expect(run.output.contains(#""warning":"2022-05-23T15:30:00+07:00""#))
    }

    @Test("replay, report and explain over a small file agree on the dossier")
    func replayReportExplain() throws {
        let file = try events([received, resolved])
        let out = temporaryFolder("cli-out")
        let replay = try runSameday(["replay", "--config", hcmcConfiguration, "--events", file, "--out", out])
        #expect(replay.status == 0)
        #expect(FileManager.default.fileExists(atPath: out + "/rollups/daily/2022-05-23/units.csv"))
        #expect(try alertIDs(inFolder: out).isEmpty == false)
        let report = try runSameday([
            "report", "--rollups", out + "/rollups", "--from", "2022-05-20", "--to", "2022-05-23", "--format", "csv",
        ])
        #expect(report.status == 0)
        let city = report.output.split(separator: "\r\n").last { $0.contains(",all,") } ?? ""
        #expect(city.hasPrefix("2022-05-20,2022-05-23,all,1,0,1,0,1,0,1,0"), "received 1 direct, resolved on time")
        // Biểu 06's rows per field within the unit, and the form's Vietnamese headers for the clerk's template.
        #expect(FileManager.default.fileExists(atPath: out + "/rollups/daily/2022-05-23/fields.csv"))
        let fields = try runSameday([
            "report", "--rollups", out + "/rollups", "--from", "2022-05-20", "--to", "2022-05-23", "--format", "csv",
            "--level", "fields", "--headers", "vi",
        ])
        #expect(fields.status == 0)
        let fieldLines = fields.output.dropFirst().split(separator: "\r\n")
        #expect(fieldLines.first?.hasPrefix("Từ ngày,Đến ngày,Mã đơn vị,Tên đơn vị,Khối,Lĩnh vực,") == true)
        #expect(fieldLines.count == 2, "one field counted: \(fields.output)")
        #expect(fieldLines.last?.hasPrefix("2022-05-20,2022-05-23,760,Quận 1,district,") == true)
        #expect(fieldLines.last?.contains(",1,0,1,0,1,0,1,0") == true)
        let explain = try runSameday([
            "explain", "--config", hcmcConfiguration, "--events", file, "--dossier", "760-220520-0001",
        ])
        #expect(explain.status == 0)
        #expect(explain.output.contains("2022-05-23T17:00:00+07:00"))
        #expect(explain.output.contains("on_time") || explain.output.contains("on time"))
    }

    @Test("a slip promising Friday for a dossier due Monday: counted in received_promise_differs, shown by explain")
    func promiseDiffers() throws {
        // Received Friday 15:01, after the 15:00 cut-off: due Monday 17:00; the desk's slip said Friday 17:00.
        let promised = received.replacingOccurrences(
            of: #""source":"test""#, with: #""promisedAt":"2022-05-20T17:00:00+07:00","source":"test""#)
        let file = try events([promised, resolved])
        let out = temporaryFolder("cli-promise")
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(try runSameday(["replay", "--config", hcmcConfiguration, "--events", file, "--out", out]).status == 0)
        let report = try runSameday([
            "report", "--rollups", out + "/rollups", "--from", "2022-05-20", "--to", "2022-05-23", "--format", "csv",
        ])
        #expect(report.status == 0)
        let lines = report.output.dropFirst().split(separator: "\r\n").map { $0.split(separator: ",") }
        let column = try #require(lines.first?.firstIndex(of: "received_promise_differs"))
        let city = try #require(lines.last { $0.contains("all") })
        #expect(city[column] == "1")
        let explain = try runSameday([
            "explain", "--config", hcmcConfiguration, "--events", file, "--dossier", "760-220520-0001",
        ])
        #expect(explain.status == 0)
        #expect(
            explain.output.contains(
                "Appointment slip (promisedAt of the first received): 2022-05-20T17:00:00+07:00; "
                    + "computed due 2022-05-23T17:00:00+07:00 — a different day"))
    }

    @Test("simulate → replay → report: the rollups folder, the CSV, the table and the comparison say simulated")
    func simulatedDataIsLabelledEverywhere() throws {
        let folder = temporaryFolder("cli-simulated")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let events = folder + "/events.jsonl"
        let simulate = try runSameday([
            "simulate", "--config", hcmcConfiguration, "--days", "3", "--per-unit", "1", "--out", events,
        ])
        #expect(simulate.status == 0)
        let replay = try runSameday(["replay", "--config", hcmcConfiguration, "--events", events, "--out", folder])
        #expect(replay.status == 0 && replay.output.contains("số liệu mô phỏng"))
        let marker = try String(contentsOfFile: folder + "/rollups/SIMULATED.txt", encoding: .utf8)
        #expect(marker.hasPrefix("số liệu mô phỏng"))
        let period = ["--rollups", folder + "/rollups", "--from", "2022-05-15", "--to", "2022-05-17"]
        let csv = try runSameday(["report"] + period + ["--format", "csv", "--level", "units"])
        let lines = csv.output.split(separator: "\r\n")
        #expect(lines.first?.hasSuffix(",on_time_rate,data") == true)
        #expect(lines.count > 1 && lines.dropFirst().allSatisfy { $0.hasSuffix(",simulated") })
        let vi = try runSameday(["report"] + period + ["--format", "csv", "--headers", "vi"])
        #expect(vi.output.split(separator: "\r\n").last?.hasSuffix(",số liệu mô phỏng") == true)
        let json = try runSameday(["report"] + period + ["--format", "json"])
        #expect(json.output.contains("\"data\":\"simulated\""))
        let table = try runSameday(["report"] + period + ["--compare", "seed-2022"])
        #expect(table.output.hasPrefix("SỐ LIỆU MÔ PHỎNG"))
        #expect(table.output.contains("SỐ LIỆU MÔ PHỎNG: our figures come from simulated events"))
        #expect(table.output.contains("> 694,309"))

        // Events from a unit system: no marker, no column.
        let own = try self.events([received, resolved])
        let plain = folder + "/plain"
        #expect(try runSameday(["replay", "--config", hcmcConfiguration, "--events", own, "--out", plain]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: plain + "/rollups/SIMULATED.txt"))
        let plainCSV = try runSameday([
            "report", "--rollups", plain + "/rollups", "--from", "2022-05-20", "--to", "2022-05-23", "--format", "csv",
        ])
        #expect(plainCSV.output.split(separator: "\r\n").first?.hasSuffix(",on_time_rate") == true)
    }

    @Test("the 2025 map (no districts): simulate realistic, replay, report, page and seed comparison all run")
    func mapOf2025() throws {
        let config = repositoryRoot.appendingPathComponent("deploy/config/hcmc-2025").path
        let folder = temporaryFolder("cli-2025")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let events = folder + "/events.jsonl"
        let simulate = try runSameday([
            "simulate", "--config", config, "--scenario", "realistic", "--scale", "0.002", "--out", events,
        ])
        #expect(simulate.status == 0, "\(simulate.output)")
        #expect(simulate.output.contains("district — (no such units in this configuration)"))
        let replay = try runSameday(["replay", "--config", config, "--events", events, "--out", folder])
        #expect(replay.status == 0, "\(replay.output)")
        let period = ["--rollups", folder + "/rollups", "--from", "2022-05-15", "--to", "2022-06-15"]
        let blocks = try runSameday(["report"] + period + ["--format", "csv", "--level", "blocks"])
        #expect(blocks.status == 0)
        let rows = blocks.output.dropFirst().split(separator: "\r\n").dropFirst().map { $0.split(separator: ",")[2] }
        #expect(rows == ["commune", "department", "vertical", "all"])
        // The communes did the districts' one-stop work: late and paused dossiers among them.
        let compare = try runSameday(["report"] + period + ["--compare", "seed-2022"])
        #expect(compare.status == 0)
        #expect(compare.output.contains("this configuration has no district units"))
        let page = folder + "/report.html"
        let html = try runSameday(
            ["report"] + period + ["--format", "html", "--config", config, "--out", page])
        #expect(html.status == 0, "\(html.output)")
        let text = try String(contentsOfFile: page, encoding: .utf8)
        #expect(text.contains("Phường Sài Gòn") || text.contains("26740"))
        #expect(!text.contains("Quận, huyện"))
    }

    @Test("revision 2 on the HCMC 2022 configuration: Tân Sơn Nhì's evening session is for notarisation only")
    func revisionTwoOnTheShippedConfiguration() throws {
        func deadline(_ unit: String, _ procedure: String, _ received: String) throws -> String {
            let run = try runSameday([
                "deadline", "--config", hcmcConfiguration, "--unit", unit, "--procedure", procedure, "--received",
                received,
            ])
            #expect(run.status == 0)
            return run.output
        }
        let birth = "1.001193.000.00.00.H29"  // đăng ký khai sinh (Hộ tịch, same-day)
        let copy = "2.000815.000.00.00.H29"  // chứng thực bản sao (Chứng thực, same-day)
        // Tuesday 21 June 2022 16:30 at Tân Sơn Nhì (27010): the evening session serves notarisation only.
        #expect(
            try deadline("27010", birth, "2022-06-21T16:30:00+07:00").contains(#""due":"2022-06-22T17:00:00+07:00""#))
        #expect(
            try deadline("27010", copy, "2022-06-21T16:30:00+07:00").contains(#""due":"2022-06-21T19:00:00+07:00""#))
        // Before 15 June 2022 the evening session did not exist.
        #expect(
            try deadline("27010", copy, "2022-06-14T16:30:00+07:00").contains(#""due":"2022-06-15T17:00:00+07:00""#))
        // days:3 received Wednesday at Thủ Đức (Saturday mornings are extra): due Monday, no critical at reception.
        let days3 = try deadline("769", "1.001022.000.00.00.H29", "2022-05-18T10:00:00+07:00")
        #expect(days3.contains(#""due":"2022-05-23T10:00:00+07:00""#))
        #expect(days3.contains(#""warning":"2022-05-20T13:30:00+07:00""#))
        #expect(days3.contains(#""critical":"2022-05-23T07:36:00+07:00""#))

        let line =
            #"{"schema":"sameday.dossier-event/1","eventId":"t1","dossier":"27010-220621-0001","unit":"27010","procedure":"1.001193.000.00.00.H29","type":"received","occurredAt":"2022-06-21T16:30:00+07:00","channel":"direct","source":"test"}"#
        let explain = try runSameday([
            "explain", "--config", hcmcConfiguration, "--events", try events([line]), "--dossier", "27010-220621-0001",
        ])
        #expect(explain.status == 0)
        #expect(explain.output.contains("17:00-19:00 extra for field:Chứng thực, cut-off 17:00, from 2022-06-15"))
        #expect(explain.output.contains("not counted: extra session for field:Chứng thực only"))
        #expect(explain.output.contains("13:00-17:00  counted: regular session"))
        #expect(explain.output.contains("same-day cut-off 15:00 (the calendar day's): T0 is after it"))
    }

    @Test("bad input: a clear message naming the file and line or the option, exit status 1, nothing written")
    func badInput() throws {
        let broken = try events([received, #"{"schema":"sameday.dossier-event/1","eventId":"e3""#])
        let out = temporaryFolder("cli-bad") + "/out"
        let replay = try runSamedayCapturingErrors([
            "replay", "--config", hcmcConfiguration, "--events", broken, "--out", out,
        ])
        #expect(replay.status == 1)
        #expect(replay.errors.contains("\(broken):2:"))
        #expect(!FileManager.default.fileExists(atPath: out))
        let deadline = try runSamedayCapturingErrors([
            "deadline", "--config", hcmcConfiguration, "--unit", "760", "--procedure", "x", "--received", "yesterday",
        ])
        #expect(deadline.status == 1 && deadline.errors.contains("--received"))
        let config = try runSamedayCapturingErrors([
            "deadline", "--config", "/nonexistent", "--unit", "760",
            "--procedure", "x", "--received", "2022-05-20T15:01:00+07:00",
        ])
        #expect(config.status == 1 && config.errors.contains("/nonexistent"))
    }

    @Test("a broker URL with a password on the command line is refused, naming the option and where it goes instead")
    func passwordOnTheCommandLine() throws {
        let toCredentialsFile =
            "--url: the URL carries a password, which a command line shows to every local user (ps) and keeps in "
            + "shell history; give the URL without it and the user:password on the first line of a file: "
            + "--credentials-file FILE (chmod 600)"
        for arguments in [
            ["topology", "declare", "--url", "amqp://guest:guest@127.0.0.1:5672/%2F"],
            ["topology", "declare", "--url", "amqp://127.0.0.1:5673/%2F, amqp://worker:s3cret@127.0.0.1:5674/%2F"],
            ["dead-letters", "list", "--url", "amqps://operator:s3cret@broker.example:5671/%2F"],
            ["dead-letters", "replay", "--url", "amqp://operator:@127.0.0.1/%2F"],
        ] {
            let run = try runSamedayCapturingErrors(arguments)
            #expect(run.status == 1, "\(arguments)")
            #expect(run.errors.contains(toCredentialsFile), "\(run.errors)")
            #expect(!run.errors.contains("s3cret"))
        }
        let watch = try runSamedayCapturingErrors([
            "alerts", "watch", "--url", "amqp://supervisor.so-noi-vu:s3cret@127.0.0.1:5672/%2F",
        ])
        #expect(watch.status == 1)
        #expect(
            watch.errors.contains("--url: the URL carries a password"),
            "\(watch.errors)")
        #expect(watch.errors.contains("put the whole URL in a file and give --url-file FILE (chmod 600)"))
    }

    @Test("--credentials-file: a file that group or others may access is refused, naming it and the fix")
    func credentialsFileMode() throws {
        let file = temporaryFolder("cli-credentials") + "/operator.credentials"
        try Data("guest:guest\n".utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o644)
        for arguments in [
            ["topology", "declare", "--credentials-file", file],
            ["dead-letters", "list", "--url", "amqp://127.0.0.1:5672/%2F", "--credentials-file", file],
        ] {
            let run = try runSamedayCapturingErrors(arguments)
            #expect(run.status == 1, "\(arguments)")
            #expect(
                run.errors.contains(
                    "--credentials-file: \(file): mode 644 gives group or others access to the broker credentials; "
                        + "chmod 600 \(file)"), "\(run.errors)")
        }
    }
}

func runSamedayCapturingErrors(_ arguments: [String]) throws -> (status: Int32, errors: String) {
    let run = try runSameday(arguments, capturingErrors: true)
    return (run.status, run.output)
}
