import Foundation
import SameDayCore
import SameDayFormats
import SameDayStore
import Testing

@testable import SameDayWorker

@Suite("The queue forecast across restarts")
struct ForecastRestartTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    /// The at_risk alerts the store's outbox holds: id and the time it fired.
    func atRisk(_ store: WorkerStore) throws -> [String] {
        try store.allAlerts().filter { $0.level == "at_risk" }.map { alert in
            let object = try JSONSerialization.jsonObject(with: Data(alert.json.utf8)) as! [String: Any]
            return "\(alert.alertID) \(object["firedAt"]!) \(object["predictedAt"]!) \(object["queueAhead"]!)"
        }.sorted()
    }

    @Test("a worker stopped at four points of a congested month raises the at_risk alerts of an uninterrupted run")
    func restartsPredictTheSame() throws {
        let events = try CongestedMonth(scale: 0.03, seed: 11).events(config: configuration)
        let folder = temporaryFolder("forecast-restart")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var stops = Set([events.count / 5, events.count * 2 / 5, events.count * 3 / 5, events.count * 4 / 5])
        var engine: WorkerEngine?
        var store: WorkerStore?
        // Killed at each stop: what was applied since the last commit is lost, and the broker delivers it again.
        var committed = 0
        var i = 0
        while i < events.count {
            if engine == nil || stops.remove(i) != nil {
                store = try WorkerStore(path: folder + "/state.sqlite")
                engine = WorkerEngine(configuration: configuration, store: store!, clockMode: .events)
                _ = try engine!.rebuild()
                i = committed
            }
            try engine!.apply(events[i])
            i += 1
            if i % 97 == 0 {
                try engine!.commit()
                committed = i
            }
        }
        try engine!.commit()
        let reference = try Replay.run(
            events: events, config: configuration,
            options: ReplayOptions(arrivalOrder: true, until: try store!.clock()))
        let expected = reference.alerts.filter { $0.level == .atRisk }.map {
            "\($0.alertId) \(RFC3339.format($0.firedAt)) \(RFC3339.format($0.predictedAt!)) \($0.queueAhead!)"
        }.sorted()
        #expect(expected.count > 100)
        let got = try atRisk(store!)
        let firstDifference = got.indices.first { $0 >= expected.count || got[$0] != expected[$0] }
        #expect(
            got == expected,
            "\(got.count) against \(expected.count); first difference: \(firstDifference.map { "\(got[$0])" } ?? "—")")
        // What each unit's forecast keeps is stored beside the dossiers.
        #expect(try store!.forecastUnits().count == Set(events.map(\.unit)).count)
    }
}
