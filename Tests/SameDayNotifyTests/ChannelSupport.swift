import Foundation
import SameDayFormats
import Testing

@testable import SameDayCore
@testable import SameDayNotify

#if canImport(Glibc)
    import Glibc
#endif

/// A District 1 digest against the HCMC 2022 configuration (as in NotifyRenderingTests), and the mail and chat
/// messages the channels deliver.
enum ChannelFixture {
    static let configuration = try! ConfigurationFolder.load(
        repositoryRoot.appendingPathComponent("deploy/config/hcmc-2022").path)

    static func at(_ text: String) -> Instant { RFC3339.parse(text + "+07:00")! }

    static func alert(_ level: AlertLevel, _ dossier: String, minutesLeft: Int?) -> Alert {
        Alert(
            alertId: Alert.id(subject: dossier, episode: 1, level: level), level: level, dossier: dossier,
            unit: "26734", block: .commune, procedure: "2.000815.000.00.00.H29", episode: 1,
            due: at("2022-05-18T17:00:00"), firedAt: at("2022-05-18T15:30:00"), thresholdAt: at("2022-05-18T15:30:00"),
            minutesLeft: minutesLeft, recipients: [], lateFired: false)
    }

    static let digest = Digest(
        atRisk: [
            alert(.overdue, "26734-220518-0007", minutesLeft: -5),
            alert(.critical, "26734-220518-0003", minutesLeft: 25),
        ], repeated: [], resolvedCount: 1, lateResolvedCount: 0,
        resolvedLatest: [alert(.cleared, "26734-220518-0001", minutesLeft: 40)], heldSince: nil,
        sentAt: at("2022-05-18T15:30:30"))

    static let text = DigestText(digest, scope: "Quận 1", configuration: configuration)

    static func mail(to: String = "lanhdao.phong@quan1.hcmc.example", subject: String? = nil) -> MailMessage {
        MailMessage(
            from: "SameDay <sameday@hcmc.example>", to: to, subject: subject ?? text.subject, plain: text.plain,
            html: text.html, sentAt: digest.sentAt, alertIDs: digest.alertIDs)
    }

    static func chat(_ kind: ChatKind, chatID: String = "12345") -> ChatMessage {
        ChatMessage(kind: kind, chatID: chatID, text: text, digest: digest)
    }
}

/// A folder of its own under the system's temporary folder, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init(_ name: String) throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("sameday-\(name)-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `text` to `name` in the folder with `mode`, and returns its path.
    ///
    /// Opened close-on-exec: tests run in parallel, and a program another test starts while this file is open for
    /// writing must not inherit it (a script held open for writing cannot be run: ETXTBSY).
    @discardableResult
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let file = path + "/" + name
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else { throw CocoaError(.fileWriteUnknown) }
            written += n
        }
        guard fchmod(fd, mode_t(mode)) == 0 else { throw CocoaError(.fileWriteUnknown) }
        return file
    }

    func read(_ name: String) -> String? { try? String(contentsOfFile: path + "/" + name, encoding: .utf8) }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path + "/" + name) }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs a blocking channel call on a thread of its own, as the notify service does, not on the cooperative pool.
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.start()
    }
}

/// Whether process `pid` is gone (or a zombie, which no longer runs).
func processGone(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
}

/// A port on 127.0.0.1 where a connection is refused: bound by a socket that does not listen, held for `body`, so no
/// other test can start listening there meanwhile.
func withRefusingPort<T>(_ body: (Int) async throws -> T) async throws -> T {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CocoaError(.featureUnsupported) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw CocoaError(.featureUnsupported) }
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}
