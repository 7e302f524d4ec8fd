import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayTestKit
import SameDayWorker
import Testing

/// Restarts the broker's application under a running worker. It disturbs every other broker test, so it runs only
/// when asked (`SAMEDAY_TEST_BROKER_RESTART=1`, which `scripts/test.sh` sets while running the tests one at a time).
@Suite(
    "Worker across a broker restart (needs broker; restarts it)",
    .enabled(if: ProcessInfo.processInfo.environment["SAMEDAY_TEST_BROKER_RESTART"] == "1"), .needs(.rabbitMQ))
struct BrokerRestartTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test("a broker restart mid-run loses nothing: every event applied once, rollups equal to replay")
    func brokerRestart() async throws {
        let events = SyntheticMonth(
            firstDay: LocalDate(year: 2022, month: 5, day: 16)!, days: 10, dossiersPerUnitPerDay: 5, seed: 9
        )
        .events(config: configuration)
        let distinct = Set(events.map(\.eventId)).count
        let harness = try WorkerHarness("restart")
        defer { harness.cleanUp() }
        let half = events.count / 2
        try harness.publish(Array(events[..<half]), configuration: configuration)

        let stop = StopFlag()
        let settings = harness.settings
        let domain = configuration
        async let worker: Void = BlockingThread.run(name: "restart worker") {
            try WorkerService(configuration: settings, domain: domain).run(until: stop)
        }
        try await Task.sleep(for: .milliseconds(800))
        try LocalBroker.rabbitmqctl(["stop_app"])
        try await Task.sleep(for: .seconds(2))
        try LocalBroker.rabbitmqctl(["start_app"])
        try LocalBroker.rabbitmqctl(["await_startup"])
        try harness.publish(Array(events[half...]), configuration: configuration)

        let store = try WorkerStore(path: settings.databasePath)
        let deadline = ContinuousClock.now + .seconds(120)
        while try store.eventCount() < distinct && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        stop.request()
        try await worker
        let applied = try store.eventCount()
        #expect(applied == distinct, "\(applied) events applied of \(distinct)")

        _ = try replayReference(
            events, configuration: configuration, until: try store.clock(), root: harness.folder + "/replay")
        #expect(try filesUnder(harness.settings.resolvedRollupsDirectory) == filesUnder(harness.folder + "/replay"))
        let outbox = try store.allAlerts().map(\.alertID)
        let expected = try alertsInAppliedOrder(store, configuration: configuration, until: try store.clock())
        #expect(Set(outbox) == Set(expected.map(\.alertId)))
    }

    @Test(
        "a broker restart under sameday notify: every person gets every alert once", .needs(.msmtp, .aiosmtpd))
    func notifyAcrossRestart() async throws {
        let h = try NotifyHarness("restart")
        defer { h.cleanUp() }
        let alerts = notifyAlerts(200)
        let domain = configuration
        let expected = h.expected(alerts, domain: domain)
        try h.declareQueue()
        try h.publish(Array(alerts[..<100]))
        try await h.runInProcess(domain: domain) {
            try await Task.sleep(for: .milliseconds(1500))
            try LocalBroker.rabbitmqctl(["stop_app"])
            try await Task.sleep(for: .seconds(2))
            try LocalBroker.rabbitmqctl(["start_app"])
            try LocalBroker.rabbitmqctl(["await_startup"])
            try h.publish(Array(alerts[100...]))
            try? await h.waitForDeliveries(expected.count, within: .seconds(120))
        }
        let found = try h.deliveries()
        let missing = expected.subtracting(found.map { "\($0.recipient) \($0.channel) \($0.alertID)" })
        #expect(missing.isEmpty, "not delivered: \(missing.sorted().joined(separator: "; "))")
        #expect(Set(found.map { "\($0.recipient) \($0.channel) \($0.alertID)" }) == expected)
        #expect(found.count == expected.count, "nothing delivered twice")
    }
}
