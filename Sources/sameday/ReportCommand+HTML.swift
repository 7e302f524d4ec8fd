import Foundation
import SameDayCore
import SameDayFiles
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
    /// still say whether a carried-over dossier was open at the end.
    func loadAlerts(through last: LocalDate) throws -> [ReportAlert] {
        var all: [ReportAlert] = []
        for folder in alerts {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: folder)
            } catch {
                throw CommandFailure("--alerts \(folder): cannot list the folder (\(error.localizedDescription))")
            }
            for name in names.sorted() {
                guard let day = AlertLog.day(ofFileNamed: name), day <= last else { continue }
                let path = (folder as NSString).appendingPathComponent(name)
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
