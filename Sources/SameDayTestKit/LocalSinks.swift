import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The repository's root folder (for scripts/ and deploy/).
public let testKitRepositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// A sink program of scripts/ on loopback (smtp-sink.py, chat-sink.py): started in a folder of its own, which it
/// fills with what it received and where it writes the port it listens on.
///
/// Started with posix_spawn and reaped with waitpid (as the bench does: Foundation's `Process` has been seen to hang
/// on a child's exit here).
public final class LocalSink: @unchecked Sendable {
    public let folder: String
    public let pid: pid_t
    public let port: Int
    private var stopped = false

    public struct DidNotStart: Error, CustomStringConvertible {
        public var description: String
    }

    /// - Parameters:
    ///   - script: under scripts/, e.g. `smtp-sink.py`.
    ///   - folder: where it keeps what it receives (created; by default a new temporary folder).
    public init(script: String, folder: String? = nil, lifetime: Int = 600) throws {
        let folder = folder ?? NSTemporaryDirectory() + "sameday-\(script)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: folder + "/port")
        self.folder = folder
        let argv = [
            "/usr/bin/python3", testKitRepositoryRoot.appendingPathComponent("scripts/" + script).path, "--dir",
            folder, "--lifetime", "\(lifetime)",
        ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Threads of the test process block most signals; the sink must get SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ) == 0 else {
            throw DidNotStart(description: "cannot run \(argv[1])")
        }
        self.pid = pid
        var waited = 0
        while !FileManager.default.fileExists(atPath: folder + "/port") && waited < 500 {
            usleep(20_000)
            waited += 1
        }
        guard let text = try? String(contentsOfFile: folder + "/port", encoding: .utf8),
            let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw DidNotStart(description: "\(script) wrote no port within 10 s")
        }
        self.port = port
    }

    public func read(_ name: String) -> String? { try? String(contentsOfFile: folder + "/" + name, encoding: .utf8) }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let path = folder + "/" + name
        try text.write(toFile: path + ".part", atomically: false, encoding: .utf8)
        _ = rename(path + ".part", path)
        return path
    }

    /// Files numbered 1, 2, … with `suffix`, in order of arrival.
    public func numbered(_ suffix: String) -> [String] {
        var found: [String] = []
        while let next = read("\(found.count + 1)\(suffix)") { found.append(next) }
        return found
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    public func remove() { try? FileManager.default.removeItem(atPath: folder) }

    deinit { stop() }
}

/// An SMTP server on loopback (scripts/smtp-sink.py, aiosmtpd) that keeps every message it accepts as a file.
public final class SMTPSink: @unchecked Sendable {
    public let sink: LocalSink
    public var port: Int { sink.port }
    public var folder: String { sink.folder }

    public init(folder: String? = nil) throws { sink = try LocalSink(script: "smtp-sink.py", folder: folder) }

    /// An msmtp configuration for the sink: 127.0.0.1, its port, no TLS, no authentication.
    public func msmtpConfiguration(port: Int? = nil) throws -> String {
        try sink.write(
            "msmtp-\(port ?? self.port).conf",
            """
            defaults
            syslog off
            account sink
            host 127.0.0.1
            port \(port ?? self.port)
            tls off
            auth off
            from sameday@hcmc.example
            account default : sink

            """)
    }

    /// `550 address` or `451 address` lines: the sink refuses those recipients with that code.
    public func refuse(_ lines: [String]) throws { try sink.write("refuse", lines.joined(separator: "\n") + "\n") }

    /// The stored messages, in order of arrival.
    public var messages: [String] { sink.numbered(".eml") }

    public func stop() { sink.stop() }

    deinit {
        sink.stop()
        sink.remove()
    }
}

/// The chat APIs' stand-in on loopback (scripts/chat-sink.py): keeps every request it answers with 200.
public final class ChatSink: @unchecked Sendable {
    public let sink: LocalSink
    public var port: Int { sink.port }
    public var url: String { "http://127.0.0.1:\(sink.port)" }

    public init(folder: String? = nil) throws { sink = try LocalSink(script: "chat-sink.py", folder: folder) }

    /// The answers of the next requests, one word each: `429`, `500`, `hang`, `ok`.
    public func script(_ answers: [String]) throws {
        try sink.write("script", answers.map { $0 + "\n" }.joined())
    }

    /// The requests answered 200: path, headers (names as sent), body.
    public var requests: [(path: String, headers: [String: String], body: String)] {
        sink.numbered(".json").compactMap { text in
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let path = object["path"] as? String, let headers = object["headers"] as? [String: String],
                let body = object["body"] as? String
            else { return nil }
            return (path, headers, body)
        }
    }

    public func stop() { sink.stop() }

    deinit {
        sink.stop()
        sink.remove()
    }
}

/// A stored message taken apart: unfolded headers, the Subject's encoded words decoded, the parts' bodies decoded.
public struct StoredMail {
    public var headers: [(name: String, value: String)] = []
    public var parts: [String: String] = [:]

    public init(_ raw: String) throws {
        let lines = raw.components(separatedBy: "\r\n")
        let end = try #require(lines.firstIndex(of: ""))
        for line in lines[..<end] {
            if line.hasPrefix(" ") || line.hasPrefix("\t"), !headers.isEmpty {
                headers[headers.count - 1].value += line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append(
                    (
                        String(line[..<colon]),
                        String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                    ))
            }
        }
        let type = try #require(header("Content-Type"))
        let boundary = try #require(
            type.components(separatedBy: "boundary=\"").last?.components(separatedBy: "\"").first)
        let body = lines[(end + 1)...]
        var index = body.startIndex
        while let start = body[index...].firstIndex(of: "--\(boundary)") {
            let partLines = body[(start + 1)...].prefix { !$0.hasPrefix("--\(boundary)") }
            index = start + 1 + partLines.count
            guard let blank = partLines.firstIndex(of: "") else { continue }
            let partType =
                partLines[..<blank].first { $0.hasPrefix("Content-Type: ") }?.dropFirst(14)
                .components(separatedBy: ";").first ?? ""
            let encoded = partLines[(blank + 1)...].joined()
            if let data = Data(base64Encoded: encoded) { parts[partType] = String(decoding: data, as: UTF8.self) }
        }
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The alert ids a message carries (`X-SameDay-Alerts`, folded over lines).
    public var alertIDs: [String] {
        (header("X-SameDay-Alerts") ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
            .map(String.init)
    }

    /// RFC 2047 B-encoded UTF-8 words, separated by folding white space, decoded.
    public var subject: String? {
        guard let value = header("Subject") else { return nil }
        let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.allSatisfy({ $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") }) else { return value }
        let bytes = words.compactMap { Data(base64Encoded: String($0.dropFirst(10).dropLast(2))) }
        guard bytes.count == words.count else { return nil }
        return String(decoding: bytes.reduce(Data(), +), as: UTF8.self)
    }
}
