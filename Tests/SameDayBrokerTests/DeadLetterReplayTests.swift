import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import Testing

/// `sameday dead-letters replay` sends back only what a fix can cure (issue "a unit touches only its own dossiers").
@Suite("Dead-letter replay does not launder")
struct DeadLetterReplayTests {
    let names = SameDayProducerNames()
    let domain: Configuration = {
        let folder = repositoryRoot.appendingPathComponent("deploy/config/hcmc-2022")
        func read(_ name: String) -> [UInt8] { Array(try! Data(contentsOf: folder.appendingPathComponent(name))) }
        return try! Configuration.parse(
            ConfigurationFiles(
                units: read("units.csv"), catalog: read("catalog.csv"), calendars: read("calendars.json"),
                alerting: read("alerting.json")))
    }()

    func body(dossier: String, unit: String) -> [UInt8] {
        Array(
            #"{"schema":"sameday.dossier-event/1","eventId":"e-1","dossier":"\#(dossier)","unit":"\#(unit)","procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"2022-05-18T09:00:00+07:00","channel":"direct","source":"test"}"#
                .utf8)
    }

    func decide(_ headers: FieldTable, _ body: [UInt8], key: String = "district.760.received")
        -> DeadLetterOrigin
        .Decision
    {
        DeadLetterOrigin(headers).replay(
            body: body, routingKey: key, messageID: "e-1", dossierHeader: "760-220518-0001", domain: domain,
            names: names)
    }

    @Test("an unknown unit now in the registry is rebuilt and sent; one still unknown stays")
    func unknownUnit() {
        let headers: FieldTable = [
            "x-sameday-reason": .string("field \"unit\": unit \"760\" is not in units.csv"),
            "x-sameday-refusal": .string("unknown_unit"),
        ]
        guard case .publish(let message) = decide(headers, body(dossier: "760-220518-0001", unit: "760")) else {
            Issue.record("an unknown unit that is now registered was kept")
            return
        }
        #expect(message.routingKey == "district.760.received")
        #expect(message.exchange == names.eventsExchange)
        guard case .keep(let why) = decide(headers, body(dossier: "99999-220518-0001", unit: "99999")) else {
            Issue.record("a unit still unknown was replayed")
            return
        }
        #expect(why.contains("still not in units.csv"))
    }

    @Test("every other refusal stays where it is, saying why: a foreign dossier is not laundered through a new key")
    func otherRefusalsStay() {
        for code in EventRefusal.allCodes where !EventRefusal.replayableCodes.contains(code) {
            let headers: FieldTable = [
                "x-sameday-reason": .string("refused"), "x-sameday-refusal": .string(code),
            ]
            guard case .keep(let why) = decide(headers, body(dossier: "000.00.18.H29-220516-0101", unit: "760"))
            else {
                Issue.record("a dead letter refused as \(code) was replayed")
                continue
            }
            #expect(why.contains("refused as \(code)"))
        }
        // A letter from before refusal codes existed: kept, not guessed from its words.
        let old: FieldTable = ["x-sameday-reason": .string("field \"unit\": unit \"760\" is not in units.csv")]
        guard case .keep = decide(old, body(dossier: "760-220518-0001", unit: "760")) else {
            Issue.record("an uncoded dead letter was replayed")
            return
        }
    }

    @Test("the broker's delivery limit: sent again exactly as it came; another broker reason stays")
    func deliveryLimit() {
        let raw = body(dossier: "760-220518-0001", unit: "760")
        let limit: FieldTable = ["x-first-death-reason": .string("delivery_limit")]
        guard case .publish(let message) = decide(limit, raw, key: "district.760.received") else {
            Issue.record("a delivery-limit dead letter was kept")
            return
        }
        #expect(message.body == raw)
        #expect(message.routingKey == "district.760.received")
        #expect(message.headers.map(\.key) == [SameDayProducerNames.shardHeader])
        #expect(message.headers.first?.value == "760-220518-0001")
        let expired: FieldTable = ["x-first-death-reason": .string("expired")]
        guard case .keep(let why) = decide(expired, raw) else {
            Issue.record("an expired dead letter was replayed")
            return
        }
        #expect(why.contains("only the delivery limit"))
    }
}
