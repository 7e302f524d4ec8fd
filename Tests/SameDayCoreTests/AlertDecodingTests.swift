import Testing

@testable import SameDayCore

@Suite("Alerts read back from their JSON line")
struct AlertDecodingTests {
    let alert = Alert(
        alertId: Alert.id(subject: "760-220518-0001", episode: 1, level: .critical), level: .critical,
        dossier: "760-220518-0001", unit: "760", block: .district, procedure: Fixture.sameDay, episode: 1,
        due: t("2022-05-18 17:00"), firedAt: t("2022-05-18 16:30"), thresholdAt: t("2022-05-18 16:30"),
        minutesLeft: 30, recipients: ["a@example.vn", "Nguyễn <b@example.vn>"], lateFired: false)

    @Test("what jsonLine writes reads back as the same alert, a source_silent with its empty codes too")
    func roundTrip() throws {
        #expect(try Alert.decode(json: Array(alert.jsonLine().utf8)) == alert)
        var silent = alert
        silent.level = .sourceSilent
        silent.dossier = ""
        silent.procedure = ""
        silent.due = nil
        silent.minutesLeft = nil
        #expect(try Alert.decode(json: Array(silent.jsonLine().utf8)) == silent)
    }

    @Test("the line's exact bytes: keys in order, times at +07:00, escapes, the at_risk fields last")
    func exactBytes() {
        var atRisk = alert
        atRisk.level = .atRisk
        atRisk.minutesLeft = -5
        atRisk.recipients = ["q\"uote\\ \n"]
        atRisk.receivedAt = t("2022-05-18 08:05")
        atRisk.predictedAt = t("2022-05-18 17:20")
        atRisk.queueAhead = 12
        let expected =
            #"{"alertId":"\#(alert.alertId)","level":"at_risk","dossier":"760-220518-0001","unit":"760","#
            + #""block":"district","procedure":"\#(Fixture.sameDay)","episode":1,"#
            + #""due":"2022-05-18T17:00:00+07:00","firedAt":"2022-05-18T16:30:00+07:00","#
            + #""thresholdAt":"2022-05-18T16:30:00+07:00","minutesLeft":-5,"recipients":["q\"uote\\ \n"],"#
            + #""lateFired":false,"receivedAt":"2022-05-18T08:05:00+07:00","#
            + #""predictedAt":"2022-05-18T17:20:00+07:00","queueAhead":12}"#
        #expect(atRisk.jsonLine() == expected)
    }

    @Test(
        "anything else is refused with the key named",
        arguments: [
            (#""level":"critical""#, #""level":"urgent""#, "level"),
            (#""block":"district""#, #""block":"ward""#, "block"),
            (#""dossier":"760-220518-0001""#, #""dossier":"""#, "dossier"),
            (#""firedAt":"2022-05-18T16:30:00+07:00""#, #""firedAt":"yesterday""#, "firedAt"),
            (#""episode":1"#, #""episode":"1""#, "episode"),
            (#""lateFired":false"#, #""lateFired":false,"extra":1"#, "extra"),
            (#""unit":"760""#, #""unit":"7\u000a60""#, "unit"),
        ])
    func refused(original: String, replacement: String, field: String) throws {
        let line = alert.jsonLine()
        #expect(line.contains(original))
        let bad = line.replacingOccurrences(of: original, with: replacement)
        let error = try #require(throws: ConfigurationError.self) { try Alert.decode(json: Array(bad.utf8)) }
        #expect(error.field == field, "\(error)")
    }

    @Test("a body past the limit is refused before it is parsed")
    func tooLarge() {
        let big = Array(repeating: UInt8(ascii: " "), count: Alert.maxJSONBytes + 1)
        #expect(throws: ConfigurationError.self) { try Alert.decode(json: big) }
    }
}
