import Foundation
import SameDayCore
import SameDayFiles
import SameDayFormats
import SameDayReport

/// `sameday report --format html`: the files the page needs (SameDayReport renders it, with no I/O of its own).
extension ReportCommand {
    func htmlPage(_ rollup: Rollup, daily: [RollupFigures]) throws -> [UInt8] {
        let configuration = try config.map(CoreFiles.loadConfiguration)
        let alertList = alerts.isEmpty ? nil : try loadAlerts(through: rollup.period.to)
        let input = HTMLReportInput(
            rollup: rollup, daily: daily, alerts: alertList, rollupSources: rollups, alertSources: alerts,
            configuration: configuration)
        return Array(HTMLReport.render(input).utf8)
    }

    /// Every alert file of the folders up to the period's last day: the period's alerts, and the earlier ones that
    /// still say whether a carried-over dossier was open at the end. A file given instead of a folder (a replay's
    /// OUT/alerts.jsonl) is read whole.
    func loadAlerts(through last: LocalDate) throws -> [ReportAlert] {
        var all: [ReportAlert] = []
        for source in alerts {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: source, isDirectory: &isFolder) else {
                throw CommandFailure("--alerts \(source): no such file or folder")
            }
            var paths = [source]
            if isFolder.boolValue {
                let names: [String]
                do {
                    names = try FileManager.default.contentsOfDirectory(atPath: source)
                } catch {
                    throw CommandFailure("--alerts \(source): cannot list the folder (\(error.localizedDescription))")
                }
                paths = names.sorted().filter { name in AlertFiles.day(ofFileNamed: name).map { $0 <= last } ?? false }
                    .map { (source as NSString).appendingPathComponent($0) }
            }
            for path in paths {
                do {
                    all += try AlertLog.parse(try CoreFiles.read(path), path: path)
                } catch let error as AlertLogError {
                    throw CommandFailure(error.description)
                }
            }
        }
        return all
    }

    /// To --out (replaced atomically, so a timer never leaves half a page) or to standard output.
    func emit(_ bytes: [UInt8]) throws {
        guard let out else {
            FileHandle.standardOutput.write(Data(bytes))
            return
        }
        do {
            try DurableFile.writeAtomically(bytes, to: out)
        } catch {
            throw CommandFailure("\(out): \(error)")
        }
    }
}
