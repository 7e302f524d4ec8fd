// Compiled into every harness by scripts/fuzz.sh (each harness is its own executable): the small configuration of
// the core's tests, which the harnesses that need dossiers and calendars share.
import Foundation

@testable import SameDayCore

let fixtureConfig: Configuration = {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../Tests/SameDayCoreTests/Fixtures/config").standardizedFileURL
    func read(_ name: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) else {
            fatalError("cannot read the fixture configuration at \(folder.path)")
        }
        return [UInt8](data)
    }
    return try! Configuration.parse(
        ConfigurationFiles(
            units: read("units.csv"), catalog: read("catalog.csv"), calendars: read("calendars.json"),
            alerting: read("alerting.json")))
}()
