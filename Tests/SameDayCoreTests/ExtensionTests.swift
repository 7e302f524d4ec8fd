import Testing

@testable import SameDayCore

/// `extended`: a lawful extension (Decree 23/2015, certification of many copies) moves the deadline itself.
@Suite("Lawful extensions (extended)")
struct ExtensionTests {
    let config = Fixture.config

    /// A same-day certification received Wednesday 18/5/2022 at 10:00 at Quận 1: due that day at 17:00.
    func dossier(_ tail: (inout EventBuilder) -> [DossierEvent], procedure: String = Fixture.sameDay) throws
        -> DossierState
    {
        var b = EventBuilder()
        b.procedure = procedure
        var events = [b(.received, "2022-05-18 10:00")]
        events += tail(&b)
        var d = Dossier(code: b.dossier)
        for e in events { _ = try d.apply(e, now: e.occurredAt, config: config) }
        return d.state(config: config)
    }

    @Test("an extension decided in time moves the judging deadline: resolved within it is on time")
    func inTime() throws {
        let st = try dossier { b in
            [b(.extended, "2022-05-18 16:00", newDue: "2022-05-20 17:00"), b(.resolved, "2022-05-20 16:00")]
        }
        #expect(st.judgingDue == t("2022-05-20 17:00"))
        #expect(st.classification == .onTime)
        #expect(st.episodes[0].extendedFrom == t("2022-05-18 17:00"))
        #expect(st.anomalies.isEmpty)
        // The same dossier without the extension is late.
        let plain = try dossier { b in [b(.resolved, "2022-05-20 16:00")] }
        #expect(plain.classification == .late)
    }

    @Test("at most extensions.maxWorkingDays past the unextended deadline: further is capped, and said")
    func capped() throws {
        let st = try dossier { b in
            [b(.extended, "2022-05-18 16:00", newDue: "2022-05-24 17:00"), b(.resolved, "2022-05-23 10:00")]
        }
        #expect(st.judgingDue == t("2022-05-20 17:00"))  // two working days after Wednesday 17:00
        #expect(st.anomalies.names == ["extension_capped"])
        #expect(st.classification == .late)
    }

    @Test("an extension after the deadline, or for a field the law does not cover, is ignored and said")
    func refused() throws {
        let late = try dossier { b in
            [b(.extended, "2022-05-18 17:30", newDue: "2022-05-20 17:00"), b(.resolved, "2022-05-19 09:00")]
        }
        #expect(late.anomalies.names == ["extension_refused"])
        #expect(late.classification == .late)
        // days:3 construction permits (field Xây dựng) are not in extensions.fields.
        let other = try dossier(
            { b in [b(.extended, "2022-05-18 16:00", newDue: "2022-05-30 17:00")] }, procedure: Fixture.days3)
        #expect(other.anomalies.names == ["extension_refused"])
        #expect(other.episodes[0].extendedFrom == nil)
    }

    @Test("a fee pause still moves an extended deadline by the paused working time")
    func pausesStillCount() throws {
        let st = try dossier { b in
            [
                b(.extended, "2022-05-18 11:00", newDue: "2022-05-19 17:00"),
                b(.feeRequested, "2022-05-19 15:00"), b(.feePaid, "2022-05-20 08:00"),
                b(.resolved, "2022-05-20 09:00"),
            ]
        }
        // 15:00–17:00 on Thursday were paused: the two working hours left run from 08:00 on Friday.
        #expect(st.judgingDue == t("2022-05-20 10:00"))
        #expect(st.classification == .onTime)
    }

    @Test("the event needs newDueAt; alerting.json sets the fields and the bound, and refuses nonsense")
    func schemaAndConfiguration() throws {
        let json =
            #"{"schema":"sameday.dossier-event/1","eventId":"x","dossier":"760-220518-0001","unit":"760","procedure":"p","type":"extended","occurredAt":"2022-05-18T16:00:00+07:00","source":"t"}"#
        #expect(throws: EventDecodingError(field: "newDueAt", reason: .missingField)) {
            try DossierEvent.decode(bytes: Array(json.utf8))
        }
        #expect(Fixture.config.alerting.extensionFields == ["Chứng thực"])
        #expect(Fixture.config.alerting.extensionMaxWorkingDays == 2)
        let alerting = String(decoding: Fixture.bytes("alerting.json"), as: UTF8.self)
        func with(_ value: String) throws -> Configuration {
            let text = alerting.replacingOccurrences(
                of: #""recipients": {"#, with: #""extensions": \#(value), "recipients": {"#)
            #expect(text != alerting)
            return try Configuration.parse(Fixture.files(replacing: "alerting.json", with: text))
        }
        let off = try with(#"{"fields": []}"#)
        #expect(off.alerting.extensionFields.isEmpty)
        #expect(try with(#"{"maxWorkingDays": 5}"#).alerting.extensionMaxWorkingDays == 5)
        #expect(throws: ConfigurationError.self) { try with(#"{"maxWorkingDays": 31}"#) }
        #expect(throws: ConfigurationError.self) { try with(#"{"days": 2}"#) }
    }
}
