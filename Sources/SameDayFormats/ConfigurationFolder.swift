import Foundation
import SameDayCore

/// Reads a domain configuration folder (docs/rules.md §7) from disk; the core validates it.
public enum ConfigurationFolder {
    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads and validates `folder`; errors name the file, the line or JSON path, and the field.
    public static func load(_ folder: String) throws -> Configuration {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw LoadError(description: "\(folder): not a configuration folder")
        }
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        func read(_ name: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path(name)) else {
                throw LoadError(description: "\(path(name)): cannot read the file")
            }
            return [UInt8](data)
        }
        let alerting = path(ConfigurationFiles.alertingFile)
        let interlevel = path(ConfigurationFiles.interlevelFile)
        let files = ConfigurationFiles(
            units: try read(ConfigurationFiles.unitsFile),
            catalog: try read(ConfigurationFiles.catalogFile),
            calendars: try read(ConfigurationFiles.calendarsFile),
            alerting: FileManager.default.fileExists(atPath: alerting)
                ? try read(ConfigurationFiles.alertingFile) : nil,
            interlevel: FileManager.default.fileExists(atPath: interlevel)
                ? try read(ConfigurationFiles.interlevelFile) : nil)
        do {
            return try Configuration.parse(files)
        } catch {
            throw LoadError(description: (folder as NSString).appendingPathComponent(error.description))
        }
    }
}
