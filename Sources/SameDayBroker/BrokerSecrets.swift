import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The broker users' passwords, one file per user in a secrets folder that never enters git:
/// `<folder>/<user>.password` (e.g. `adapter.motcua-q1.password`, `worker.password`), the password on its first
/// line, readable by its owner only (mode 0600 or 0400: no bit for group or others).
///
/// Loading checks every file before anything is generated, and the error names each missing, unreadable, too
/// open or too short file, so an operator fixes them all in one go.
public enum BrokerSecrets {
    /// Passwords shorter than this are refused: they are machine credentials, generated, never typed.
    public static let minimumLength = 16

    /// The file that holds `user`'s password in `folder`.
    public static func path(folder: String, user: String) -> String {
        (folder as NSString).appendingPathComponent("\(user).password")
    }

    /// The password of each of `users`, from `folder`.
    public static func load(folder: String, users: [String]) throws -> [String: String] {
        var passwords: [String: String] = [:]
        var problems: [String] = []
        for user in users {
            let file = path(folder: folder, user: user)
            var info = stat()
            guard stat(file, &info) == 0 else {
                problems.append("\(file): missing (the password of broker user \(user), mode 0600)")
                continue
            }
            guard info.st_mode & S_IFMT == S_IFREG else {
                problems.append("\(file): not a regular file")
                continue
            }
            let mode = info.st_mode & 0o777
            guard mode & 0o077 == 0 else {
                problems.append(
                    "\(file): mode \(String(mode, radix: 8)) lets others read it; chmod 600 (or 400) it")
                continue
            }
            guard let data = FileManager.default.contents(atPath: file),
                let text = String(data: data, encoding: .utf8)
            else {
                problems.append("\(file): cannot read it as UTF-8 text")
                continue
            }
            let password =
                text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).first
                .map(String.init) ?? ""
            guard password.utf8.count >= minimumLength else {
                problems.append(
                    "\(file): the password must be at least \(minimumLength) bytes on the first line (e.g. openssl rand -base64 32)"
                )
                continue
            }
            passwords[user] = password
        }
        guard problems.isEmpty else { throw BrokerSecretsError(problems: problems) }
        return passwords
    }
}

public struct BrokerSecretsError: Error, CustomStringConvertible {
    public var problems: [String]
    public var description: String {
        "broker secrets: " + problems.joined(separator: "\n  ")
    }
}
