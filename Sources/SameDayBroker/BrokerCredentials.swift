import RabbitMQ
import SameDayFiles

extension ConnectionConfiguration {
    /// Every broker's user and password from a credentials file: `user:password` on its first line, the file the
    /// owner's only. The worker, `sameday sources` and the operator's `--credentials-file` share this reading.
    public mutating func useCredentials(fromFile path: String) throws {
        let text = try SecretFile.read(path, holding: "the broker credentials")
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
            throw CredentialsFileError(description: "\(path): expected one line user:password")
        }
        for index in brokers.indices {
            brokers[index].user = String(line[..<colon])
            brokers[index].password = String(line[line.index(after: colon)...])
        }
    }
}

/// A credentials file that is not one line `user:password`.
public struct CredentialsFileError: Error, CustomStringConvertible {
    public let description: String
}
