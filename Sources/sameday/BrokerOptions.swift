import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayFiles

/// Broker URLs given to commands, and the files that hold their secrets. A password never comes from the command
/// line: every local user sees it (`ps`, `/proc`) and shell history keeps it. SAMEDAY_AMQP_URL is still read (it
/// is not on the command line), but a password belongs in a file (docs/operations.md).
enum BrokerOptions {
    static let localBroker = "amqp://127.0.0.1:5672/%2F"

    /// Refuses a URL given as `option` that carries a password; `instead` says where the password goes.
    static func refusePassword(in url: String?, option: String, instead: String) throws {
        guard let url, BrokerURL.carriesPassword(url) else { return }
        throw ValidationError(
            "\(option): the URL carries a password, which a command line shows to every local user (ps) and "
                + "keeps in shell history; \(instead)")
    }

    /// Where the password goes for a command that has `--credentials-file`.
    static let useCredentialsFile =
        "give the URL without it and the user:password on the first line of a file: --credentials-file FILE (chmod 600)"

    /// A broker URL file (`--url-file`, the receiver's `brokerURLFile`): the URL with its password, so the file
    /// must be its owner's only.
    static func readURLFile(_ path: String) throws -> String {
        try SecretFile.read(path, holding: "the broker URL and its password")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An operator's connection: `url`, else SAMEDAY_AMQP_URL, else the local broker; user and password from
    /// `credentialsFile` when one is given (the worker's credentials file format).
    static func connection(url: String?, credentialsFile: String?, name: String) throws -> ConnectionConfiguration {
        let urls = url ?? ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? localBroker
        var connection = try ConnectionConfiguration(urls: [urls], connectionName: name)
        if let credentialsFile {
            do {
                try connection.useCredentials(fromFile: credentialsFile)
            } catch {
                throw CommandFailure("--credentials-file: \(error)")
            }
        }
        return connection
    }
}
