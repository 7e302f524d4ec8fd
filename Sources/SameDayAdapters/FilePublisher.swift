import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFiles

#if canImport(Glibc)
    import Glibc
#endif

/// What one run over one input did.
public struct PublishSummary: Sendable, Equatable {
    public var input: String
    /// Events confirmed by the broker (or, in a dry run, events that would be published).
    public var published = 0
    /// Events written to the spool because the broker was unavailable (they go out on a later run or flush).
    public var spooled = 0
    public var rejected = 0
    /// Records whose status the profile maps to `skip`.
    public var skipped = 0
    /// The line a resumed run started from (nil for a run from the start).
    public var resumedAtLine: Int?
    /// Where a checkpoint of an earlier version of the file was set aside (the run then started from the top).
    public var staleCheckpoint: String?

    public var description: String {
        var text = "\(input): \(published) published, \(spooled) spooled, \(rejected) rejected, \(skipped) skipped"
        if let resumedAtLine { text += " (resumed from the checkpoint at line \(resumedAtLine))" }
        if staleCheckpoint != nil { text += " (from the start: the file changed since its checkpoint)" }
        return text
    }
}

/// Progress of a run, for a terminal.
public struct PublishProgress: Sendable {
    public var bytesRead: Int64
    public var fileSize: Int64
    public var records: Int
    public var rejected: Int
}

/// Publishes one export file with a profile: streams records, maps them, hands events to a `DurablePublisher`
/// (or only validates them, in a dry run), writes rejects, and keeps a checkpoint so a crashed run resumes.
///
/// The checkpoint (`<input>.checkpoint` unless given) records the byte offset and line up to which every record is
/// settled: its event confirmed or spooled, or the record rejected or skipped; and the SHA-256 of the whole file up
/// to that offset. It never moves past an event that is only in flight. A finished run deletes it; a later run of
/// the same file then starts again from the top and publishes only duplicates, which the worker drops (event ids
/// are deterministic).
///
/// A checkpoint whose consumed prefix no longer matches the file (the export was rewritten since, as a scheduled
/// export does every run) is set aside as `<checkpoint>.stale-<time>` with a notice, and the file is published
/// from the start: what the earlier version already published comes again with the same ids and is dropped.
/// A file that only grew (records appended after the checkpoint) resumes.
public final class FilePublisher {
    public let profile: MappingProfile
    public let configuration: Configuration
    public let names: SameDayProducerNames
    public var rejectsPath: String?
    public var checkpointPath: String?
    public var onProgress: ((PublishProgress) -> Void)?
    /// Called for each rejected record (line, reason), e.g. to print them in a dry run.
    public var onRejected: ((Int, String) -> Void)?
    /// Called for each event in file order (line, event, broker message), e.g. for `--dry-run --show N`.
    public var onEvent: ((Int, DossierEvent, OutboundMessage) -> Void)?
    /// Called with a sentence for the operator's log (a checkpoint set aside …).
    public var onNotice: ((String) -> Void)?
    /// The window of plausible event times (issue "hostile input"); records outside it are rejected.
    public var eventBounds = EventTimeBounds.standard
    /// The clock the window's upper end is measured from (default: the wall clock when the run starts).
    public var now: Instant?
    /// The checkpoint is saved every second and every this many records (each save is an fsync).
    public var checkpointEvery = 10_000
    /// For tests: stop (as a crash would) after this many records of the run.
    public var crashAfterRecords: Int?

    private let sink: DurablePublisher?

    /// `sink` nil: a dry run that only maps and validates.
    public init(
        profile: MappingProfile, configuration: Configuration, sink: DurablePublisher?,
        names: SameDayProducerNames = SameDayProducerNames()
    ) {
        self.profile = profile
        self.configuration = configuration
        self.sink = sink
        self.names = sink?.names ?? names
    }

    func mapper(header: [String]?, file: String) throws -> RecordMapper {
        try RecordMapper(
            profile: profile, configuration: configuration, names: names, header: header, file: file,
            eventBounds: eventBounds, now: now ?? wallClockNow())
    }

    public func run(input: String) throws -> PublishSummary {
        let reader = try RecordReader(
            path: input, kind: profile.format == .csv ? .csv(delimiter: profile.delimiter) : .jsonLines)
        let mapper = try self.mapper(header: reader.header, file: input)
        var summary = PublishSummary(input: input)
        let checkpointPath = self.checkpointPath ?? input + ".checkpoint"
        // The fingerprint of the consumed prefix grows with the checkpoint: `prefix` hashes the file from its
        // first byte up to `prefix.count`, read through a descriptor of its own.
        var prefix = try PrefixFingerprint(path: input)
        var resumed = false
        if sink != nil, FileManager.default.fileExists(atPath: checkpointPath) {
            let why: String
            switch Checkpoint.load(checkpointPath) {
            case .success(let checkpoint):
                if checkpoint.offset < reader.dataOffset || checkpoint.offset > reader.fileSize {
                    why = "it stops at byte \(checkpoint.offset), the file now has \(reader.fileSize) bytes"
                } else if try prefix.advance(to: checkpoint.offset) == checkpoint.prefixSHA256 {
                    why = ""
                    try reader.seek(to: checkpoint.offset, line: checkpoint.line)
                    summary.resumedAtLine = checkpoint.line
                    resumed = true
                } else {
                    why = "the first \(checkpoint.offset) bytes of the file differ from those it was made for"
                }
            case .failure(let problem):
                why = problem.description
            }
            if !resumed {
                prefix = try PrefixFingerprint(path: input)
                let stale = checkpointPath + ".stale-" + Self.stamp()
                try AdapterError.files { () throws(FileError) in try DurableFile.rename(checkpointPath, to: stale) }
                summary.staleCheckpoint = stale
                onNotice?(
                    "\(checkpointPath): \(input) changed since this checkpoint was written (\(why)); set aside as "
                        + "\(stale), publishing \(input) from the start (records published before come again with "
                        + "the same event ids and are dropped as repeats)")
            }
        }
        let rejects = try rejectsPath.map { try RejectsFile(path: $0, truncate: !resumed) }

        // Records in read order; an entry is settled once its event is durable (or at once for a reject/skip).
        var ends: [(offset: Int64, line: Int)] = []
        var settledFlags: [Bool] = []
        var head = 0
        var base = 0  // token of ends[0]
        var checkpointed = (offset: reader.offset, line: reader.nextLine)
        var lastCheckpoint = ContinuousClock.now
        var lastProgress = ContinuousClock.now
        var records = 0
        var checkpointRecords = 0

        func advance() {
            while head < settledFlags.count && settledFlags[head] {
                checkpointed = ends[head]
                head += 1
            }
            if head > 65_536 {
                ends.removeFirst(head)
                settledFlags.removeFirst(head)
                base += head
                head = 0
            }
        }
        func saveCheckpoint() throws {
            try rejects?.sync()
            let fingerprint = try prefix.advance(to: checkpointed.offset)
            try Checkpoint(prefixSHA256: fingerprint, offset: checkpointed.offset, line: checkpointed.line)
                .save(checkpointPath)
        }
        sink?.onDurable = { token, outcome in
            settledFlags[token - base] = true
            switch outcome {
            case .confirmed: summary.published += 1
            case .spooled: summary.spooled += 1
            case .unroutable(let why): summary.rejected += 1; _ = why
            }
        }
        defer { sink?.onDurable = nil }

        let pipeline = MappingPipeline(reader: reader, mapper: mapper)
        defer { pipeline.cancel() }
        do {
            try publishRecords()
        } catch {
            // A failure that is not a crash (spool full, broker refused the credentials …): keep what is settled, so
            // the next run starts after it.
            if sink != nil && crashAfterRecords == nil {
                advance()
                try? saveCheckpoint()
            }
            throw error
        }
        func publishRecords() throws {
            while let batch = try pipeline.next() {
                for (record, mapped) in batch {
                    records += 1
                    if let crashAfterRecords, records > crashAfterRecords {
                        throw AdapterError("simulated crash after \(crashAfterRecords) records")
                    }
                    let token = base + ends.count
                    ends.append((record.endOffset, record.line + 1))
                    settledFlags.append(false)
                    switch mapped {
                    case .event(let event, let message):
                        onEvent?(record.line, event, message)
                        if let sink {
                            try sink.submit(event, message: message, token: token)
                        } else {
                            summary.published += 1
                            settledFlags[token - base] = true
                        }
                    case .skipped:
                        summary.skipped += 1
                        settledFlags[token - base] = true
                    case .rejected(let reason):
                        summary.rejected += 1
                        settledFlags[token - base] = true
                        try rejects?.write(file: input, line: record.line, reason: reason, text: record.text)
                        onRejected?(record.line, reason)
                    }
                }
                // Keeps the bookkeeping bounded (settled records drop off the front): constant memory on any input.
                advance()
                guard let last = batch.last?.record else { continue }
                let now = ContinuousClock.now
                if sink != nil, now - lastCheckpoint >= .seconds(1) || records - checkpointRecords >= checkpointEvery {
                    advance()
                    try saveCheckpoint()
                    lastCheckpoint = now
                    checkpointRecords = records
                }
                if let onProgress, now - lastProgress >= .milliseconds(500) {
                    onProgress(
                        PublishProgress(
                            bytesRead: last.endOffset, fileSize: reader.fileSize, records: records,
                            rejected: summary.rejected))
                    lastProgress = now
                }
            }
            try sink?.drain()
        }
        try rejects?.sync()
        advance()
        if sink != nil {
            if head == settledFlags.count {
                try AdapterError.files { () throws(FileError) in try DurableFile.remove(checkpointPath) }
            } else {
                try saveCheckpoint()
            }
        }
        onProgress?(
            PublishProgress(
                bytesRead: reader.fileSize, fileSize: reader.fileSize, records: records, rejected: summary.rejected))
        return summary
    }

    /// `20260530T141500`, local time (UTC+07:00), for names of set-aside files.
    static func stamp() -> String {
        let text = RFC3339.format(wallClockNow())  // 2026-05-30T14:15:00+07:00
        return String(text.prefix(19)).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
    }
}

/// The wall clock, in whole seconds.
public func wallClockNow() -> Instant { Instant(Date().timeIntervalSince1970.rounded(.down)) }

/// SHA-256 of a file's first `count` bytes, extended as the run goes (each byte is read and hashed once).
final class PrefixFingerprint {
    private let fd: Int32
    private let path: String
    private var hasher = SHA256.Hasher()

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AdapterError("\(path): cannot open (\(String(cString: strerror(errno))))") }
    }

    var count: Int64 { hasher.count }

    /// Hashes up to `offset` (never backwards) and returns the digest of the first `offset` bytes.
    func advance(to offset: Int64) throws -> String {
        var chunk = [UInt8](repeating: 0, count: Int(min(max(offset - hasher.count, 0), 1 << 20)))
        while hasher.count < offset {
            let want = Int(min(offset - hasher.count, Int64(chunk.count)))
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(hasher.count)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw AdapterError("\(path): cannot read byte \(hasher.count) for the checkpoint") }
            chunk.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return hasher.finalize()
    }

    deinit { close(fd) }
}

/// The checkpoint file: `{"version": 2, "prefixSHA256": …, "offset": …, "line": …}`.
struct Checkpoint: Equatable {
    var prefixSHA256: String
    var offset: Int64
    var line: Int

    /// The checkpoint, or why it cannot be used (an older format, unreadable).
    static func load(_ path: String) -> Result<Checkpoint, CheckpointProblem> {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return .failure(CheckpointProblem(description: "it cannot be read as a checkpoint")) }
        guard (object["version"] as? NSNumber)?.intValue == 2, let fingerprint = object["prefixSHA256"] as? String,
            let offset = (object["offset"] as? NSNumber)?.int64Value, let line = (object["line"] as? NSNumber)?.intValue
        else {
            return .failure(CheckpointProblem(description: "it was written by an older version of sameday"))
        }
        return .success(Checkpoint(prefixSHA256: fingerprint, offset: offset, line: line))
    }

    func save(_ path: String) throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("version", 2)
        writer.field("prefixSHA256", prefixSHA256)
        writer.field("offset", offset)
        writer.field("line", line)
        writer.endObject()
        try AdapterError.files { () throws(FileError) in
            try DurableFile.writeAtomically(writer.bytes + [0x0A], to: path)
        }
    }
}

struct CheckpointProblem: Error, CustomStringConvertible { var description: String }

/// The rejects file: one JSON object per rejected record, `{"file", "line", "reason", "record"}`, with the original
/// text of the record, so a unit's IT staff can fix the export and feed the rejects back. The record may hold the
/// export's personal data, so the file is owner-only (0600), like the checkpoint's other writes it goes through
/// `DurableFile`.
final class RejectsFile {
    private let fd: Int32
    private var pending: [UInt8] = []
    let path: String

    init(path: String, truncate: Bool) throws {
        self.path = path
        fd = try AdapterError.files { () throws(FileError) in
            try DurableFile.openForAppending(path, mode: DurableFile.privateMode, truncate: truncate)
        }
    }

    deinit { close(fd) }

    func write(file: String, line: Int, reason: String, text: [UInt8]) throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("file", file)
        writer.field("line", line)
        writer.field("reason", reason)
        writer.field("record", String(decoding: text, as: UTF8.self))
        writer.endObject()
        pending += writer.bytes
        pending.append(0x0A)
        if pending.count > 64 << 10 { try sync() }
    }

    func sync() throws {
        if !pending.isEmpty {
            try AdapterError.files { () throws(FileError) in try DurableFile.writeAll(fd, pending, path: path) }
            pending.removeAll(keepingCapacity: true)
        }
        try AdapterError.files { () throws(FileError) in try DurableFile.sync(fd, path: path) }
    }
}
