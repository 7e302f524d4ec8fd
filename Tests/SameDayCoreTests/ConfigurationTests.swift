import Testing

@testable import SameDayCore

@Suite("Configuration loading and validation")
struct ConfigurationTests {
    @Test func fixtureLoads() {
        let c = Fixture.config
        #expect(c.units.count == 7)
        #expect(c.unit(c.unitID("27010")!).name == "Phường Tân Sơn Nhì, Quận Tân Phú")
        #expect(c.catalog.count == 6)
        #expect(c.catalog[1].cutoff.map(Int.init) == 57_600)
        #expect(c.calendars.map(\.id) == ["hcmc-standard", "hcmc-saturday", "notary-evening"])
        // base inheritance: the Saturday calendar keeps the standard holidays and weekdays.
        let sat = c.calendar(id: "hcmc-saturday")!
        #expect(sat.isHoliday(LocalDate("2022-09-02")!))
        // Saturday morning is an extra session: same-day procedures count it, hours:N and days:N do not.
        #expect(!sat.schedule(of: LocalDate("2022-05-21")!).isWorkingDay)
        let q = c.unitID("769")!
        let sameDaySat = c.workingCalendar(unit: q, procedure: c.procedureRef(Fixture.sameDay, unit: q))
        #expect(sameDaySat.schedule(of: LocalDate("2022-05-21")!).close == 11 * 3600 + 1800)
        #expect(sameDaySat.schedule(of: LocalDate("2022-05-20")!).cutoff == 15 * 3600)
        #expect(
            c.alerting.recipients(level: .escalated, unit: "760", block: .district)
                == ["chutich@quan1.example.vn", "sonoivu.kstthc@example.vn"])
        #expect(c.alerting.recipients(level: .warning, unit: "26740", block: .commune) == ["phuong@example.vn"])
    }

    @Test("units are found by their code's bytes: every one of a thousand, none for a near miss, canonical twins apart")
    func unitCodeTable() {
        let codes = (0..<1000).map { "U\($0)" }
        let table = CodeTable(codes: codes)
        for (unit, code) in codes.enumerated() { #expect(table.find(code) == unit) }
        for miss in ["U1000", "", "U1 ", "u1", "U01", "U"] { #expect(table.find(miss) == nil) }
        // Swift's `==` takes these pairs as equal; a routing key or SQL does not.
        let twins = CodeTable(codes: ["K", "\u{212A}", "\u{00C5}", "A\u{030A}", "b", "b"])
        #expect(twins.find("K") == 0)
        #expect(twins.find("\u{212A}") == 1)
        #expect(twins.find("\u{00C5}") == 2)
        #expect(twins.find("A\u{030A}") == 3)
        #expect(twins.find("b") == 5)  // the last of a code given twice, as the dictionary before it
        #expect(twins.find("A") == nil)
        let c = Fixture.config
        for (unit, u) in c.units.enumerated() { #expect(c.unitID(u.code) == UnitID(unit)) }
    }

    @Test("parentRoles: a ward's alerts also reach the roles its district lists itself, after the ward's own people")
    func parentRoles() throws {
        let plain = String(decoding: Fixture.bytes("alerting.json"), as: UTF8.self)
        let withParents = plain.replacingOccurrences(
            of: #""recipients": {"#, with: #""recipients": {"parentRoles": ["office_head", "unit_head"],"#)
        #expect(withParents != plain)
        let c = try Configuration.parse(Fixture.files(replacing: "alerting.json", with: withParents))
        let ward = c.unitID("26740")!
        #expect(
            c.recipients(.overdue, unit: ward)
                == ["phuong@example.vn", "truongphong@quan1.example.vn", "chutich@quan1.example.vn"])
        // Levels that do not go to those roles stay with the ward.
        #expect(c.recipients(.warning, unit: ward) == ["phuong@example.vn"])
        // A district has no parent; without the key nothing goes up.
        #expect(
            c.recipients(.overdue, unit: c.unitID("760")!)
                == Fixture.config.recipients(.overdue, unit: c.unitID("760")!))
        #expect(Fixture.config.recipients(.overdue, unit: ward) == ["phuong@example.vn"])
    }

    @Test("a holiday wins over dates and weekdays; base dates are inherited and can be replaced")
    func calendarPrecedence() throws {
        let cals = #"""
            {"calendars": [
              {"id": "hcmc-standard", "days": {"mon": {"sessions": ["07:30-11:30"]}, "sat": null},
               "holidays": ["2022-05-16"], "dates": {"2022-05-16": {"sessions": ["08:00-09:00"]}, "2022-05-21": {"sessions": ["08:00-10:00"]}}},
              {"id": "hcmc-saturday", "base": "hcmc-standard", "holidays": ["2022-05-23"],
               "dates": {"2022-05-21": {"sessions": ["08:00-12:00"], "cutoff": "09:00"}}},
              {"id": "notary-evening", "base": "hcmc-saturday"}
            ]}
            """#
        let c = try Configuration.parse(Fixture.files(replacing: "calendars.json", with: cals))
        let std = c.calendar(id: "hcmc-standard")!
        #expect(!std.schedule(of: LocalDate("2022-05-16")!).isWorkingDay)  // holiday beats the dated session
        #expect(std.schedule(of: LocalDate("2022-05-21")!).close == 10 * 3600)  // make-up Saturday
        #expect(std.schedule(of: LocalDate("2022-05-23")!).isWorkingDay)
        let grandchild = c.calendar(id: "notary-evening")!
        #expect(grandchild.schedule(of: LocalDate("2022-05-21")!).cutoff == 9 * 3600)
        #expect(!grandchild.schedule(of: LocalDate("2022-05-23")!).isWorkingDay)  // holidays add up along the chain
        #expect(!grandchild.schedule(of: LocalDate("2022-05-16")!).isWorkingDay)
    }

    @Test func alertingIsOptional() throws {
        var files = Fixture.files()
        files.alerting = nil
        let c = try Configuration.parse(files)
        #expect(c.alerting.recipients(level: .warning, unit: "760", block: .district).isEmpty)
        #expect(c.alerting.thresholds[.sameDay] == Thresholds.defaults(for: .sameDay))
        #expect(c.alerting.defaultSla == .days(1))
    }

    @Test func csvWithBOMQuotesAndCRLF() throws {
        let units =
            "\u{FEFF}code,name,block,parent,calendar\r\n\"760\",\"Quận 1, \"\"trung tâm\"\"\",district,,hcmc-standard\r\n"
        let c = try Configuration.parse(Fixture.files(replacing: "units.csv", with: units).withCatalog(onlyCity: true))
        #expect(c.units[0].name == "Quận 1, \"trung tâm\"")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var file: String
        var content: String
        var line: Int?
        var path: String?
        var field: String?
        var testDescription: String { "\(file) \(field ?? "-")" }
    }

    static let header = "code,name,block,parent,calendar\n"
    static let calendars = #"{"calendars":[{"id":"c","days":{"mon":{"sessions":["07:30-11:30"]}}}]}"#

    static let bad: [Bad] = [
        Bad(
            file: "units.csv", content: header + "760,Quận 1,district,,hcmc-standard\n761,Quận 2,city,,hcmc-standard\n",
            line: 3, field: "block"),
        Bad(file: "units.csv", content: header + "760,Quận 1,district,,no-such-calendar\n", line: 2, field: "calendar"),
        Bad(
            file: "units.csv",
            content: header + "760,Quận 1,district,,hcmc-standard\n760,Again,district,,hcmc-standard\n", line: 3,
            field: "code"),
        Bad(file: "units.csv", content: "code,name,block,calendar\n", line: 1),
        Bad(
            file: "units.csv",
            content: header
                + "760,Quận 1,district,,hcmc-standard\n27010,Phường Tân Sơn Nhì,commune,767,hcmc-standard\n",
            line: 3, field: "parent"),
        Bad(
            file: "units.csv",
            content: header + "A1,Một,district,B1,hcmc-standard\nB1,Hai,district,A1,hcmc-standard\n", line: 2,
            field: "parent"),
        Bad(file: "units.csv", content: header + "760,\"Quận 1,district,,hcmc-standard\n", line: 2),
        Bad(
            file: "catalog.csv", content: "procedure,name,field,sla,cutoff,scope\nP1,Name,F,days:0,,city\n", line: 2,
            field: "sla"),
        Bad(
            file: "catalog.csv", content: "procedure,name,field,sla,cutoff,scope\nP1,Name,F,same-day,25:00,city\n",
            line: 2, field: "cutoff"),
        Bad(
            file: "catalog.csv", content: "procedure,name,field,sla,cutoff,scope\nP1,Name,F,same-day,,999\n", line: 2,
            field: "scope"),
        Bad(
            file: "catalog.csv",
            content: "procedure,name,field,sla,cutoff,scope\nP1,Name,F,hours:2,,city\nP2,Name,F,weeks:2,,city\n",
            line: 3, field: "sla"),
        Bad(
            file: "calendars.json",
            content:
                #"{"calendars":[{"id":"hcmc-standard","days":{"mon":{"sessions":["07:30-11:30","11:00-17:00"]}}}]}"#,
            line: 1, path: "calendars[0].days.mon.sessions[1]", field: "sessions"),
        Bad(
            file: "calendars.json",
            content:
                "{\"calendars\":[\n{\"id\":\"hcmc-standard\",\n\"days\":{\"mon\":{\"sessions\":[\"07:30-11:30\"]}},\n\"holidays\":[\"2022-02-30\"]}]}",
            line: 4, path: "calendars[0].holidays[0]", field: "holidays"),
        Bad(
            file: "calendars.json", content: #"{"calendars":[{"id":"hcmc-standard","base":"nope","days":{}}]}"#,
            path: "calendars[0].base", field: "base"),
        Bad(
            file: "calendars.json", content: #"{"calendars":[{"id":"hcmc-standard","days":{"monday":null}}]}"#,
            path: "calendars[0].days.monday", field: "monday"),
        Bad(
            file: "calendars.json",
            content: #"{"calendars":[{"id":"hcmc-standard","days":{"mon":{"sessions":["7:30-11:30"]}}}]}"#,
            path: "calendars[0].days.mon.sessions[0]", field: "sessions"),
        Bad(
            file: "calendars.json",
            content:
                #"{"calendars":[{"id":"hcmc-standard","days":{"mon":{"sessions":["07:30-11:30"],"cutoff":"15h"}}}]}"#,
            path: "calendars[0].days.mon.cutoff", field: "cutoff"),
        Bad(
            file: "calendars.json", content: #"{"calendars":[{"id":"hcmc-standard","days":{"mon":null}}]}"#,
            path: "calendars[0].days", field: "days"),
        Bad(file: "calendars.json", content: "{\"calendars\": [,]}", line: 1),
        Bad(
            file: "alerting.json", content: #"{"thresholds":{"same-day":{"warning":{"percentUsed":150}}}}"#,
            path: "thresholds.same-day.warning.percentUsed", field: "percentUsed"),
        Bad(file: "alerting.json", content: #"{"thresholds":{"weekly":{}}}"#, path: "thresholds", field: "thresholds"),
        Bad(
            file: "alerting.json", content: #"{"recipients":{"parentRoles":["mayor"]}}"#,
            path: "recipients.parentRoles[0]", field: "parentRoles"),
        Bad(
            file: "alerting.json", content: #"{"thresholds":{"days":{"escalated":{"minutesBefore":10}}}}"#,
            path: "thresholds.days.escalated.minutesBefore", field: "minutesBefore"),
        Bad(
            file: "alerting.json", content: #"{"levels":{"warning":["mayor"]}}"#, path: "levels.warning[0]",
            field: "warning"),
        Bad(
            file: "alerting.json", content: "{\n\"recipients\":{\"units\":{\"999\":{}}}}", line: 2,
            path: "recipients.units", field: "units"),
        Bad(file: "alerting.json", content: #"{"defaultSla":"soon"}"#, path: "defaultSla", field: "defaultSla"),
        Bad(
            file: "alerting.json", content: #"{"silence":{"workingMinutes":0}}"#, path: "silence.workingMinutes",
            field: "workingMinutes"),
        Bad(file: "alerting.json", content: #"{"colour":"red"}"#, path: "colour", field: "colour"),
        Bad(
            file: "alerting.json", content: #"{"silence":{"minutes":60}}"#, path: "silence.minutes",
            field: "minutes"),
        Bad(
            file: "alerting.json", content: #"{"silence":{"blocks":{"ward":480}}}"#, path: "silence.blocks.ward",
            field: "ward"),
        Bad(
            file: "alerting.json", content: #"{"silence":{"blocks":{"commune":0}}}"#,
            path: "silence.blocks.commune", field: "commune"),
        Bad(
            file: "alerting.json", content: "{\"silence\":{\"units\":{\n\"999\":1440}}}", line: 2,
            path: "silence.units.999", field: "999"),
        Bad(
            file: "alerting.json", content: #"{"silence":{"units":{"000.00.15.H29":-5}}}"#,
            path: "silence.units.000.00.15.H29", field: "000.00.15.H29"),
        Bad(
            file: "alerting.json", content: #"{"silence":{"units":{"760":"1 day"}}}"#, path: "silence.units.760",
            field: "760"),
    ]

    @Test(arguments: bad)
    func errorsNameFileLocationAndField(_ b: Bad) {
        do {
            _ = try Configuration.parse(Fixture.files(replacing: b.file, with: b.content))
            Issue.record("accepted bad \(b.file)")
        } catch {
            #expect(error.file == b.file, "\(error)")
            if let line = b.line { #expect(error.line == line, "\(error)") }
            if let path = b.path { #expect(error.path == path, "\(error)") }
            if let field = b.field { #expect(error.field == field, "\(error)") }
            #expect(error.description.hasPrefix(b.file), "\(error)")
        }
    }
}

extension ConfigurationFiles {
    /// Keeps only city-scoped catalog entries (for unit files that drop unit 760).
    func withCatalog(onlyCity: Bool) -> ConfigurationFiles {
        var f = self
        let text = String(decoding: catalog, as: UTF8.self)
        f.catalog = Array(text.split(separator: "\r\n").filter { !$0.hasSuffix(",760") }.joined(separator: "\r\n").utf8)
        return f
    }
}
