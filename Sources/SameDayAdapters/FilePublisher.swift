import Foundation
import SameDayBroker
import SameDayCore

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

    public var description: String {
        var text = "\(input): \(published) published, \(spooled) spooled, \(rejected) rejected, \(skipped) skipped"
        if let resumedAtLine { text += " (resumed from the checkpoint at line \(resumedAtLine))" }
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
/// settled: its event confirmed or spooled, or the record rejected or skipped. It never moves past an event that
/// is only in flight. A finished run deletes it; a later run of the same file then starts again from the top
/// and publishes only duplicates, which the worker drops (event ids are deterministic).
public final class FilePublisher {
    public let profile: MappingProfile
    public let configuration: Configuration
    public let mapper: (_ header: [String]?, _ file: String) throws -> RecordMapper
    public var rejectsPath: String?
    public var checkpointPath: String?
    public var onProgress: ((PublishProgress) -> Void)?
    /// Called for each rejected record (line, reason), e.g. to print them in a dry run.
    public var onRejected: ((Int, String) -> Void)?
    /// The checkpoint is saved every second and every this many records (each save is an fsync).
    public var checkpointEvery = 10_000
    /// For tests: stop (as a crash would) after this many records of the run.
    public var crashAfterRecords: Int?

    private let sink: DurablePublisher?

    /// `sink` nil: a dry run that only maps and validates.
    public init(
        profile: MappingProfile, configuration: Configuration, sink: DurablePublisher?,
        topology: SameDayTopology = SameDayTopology(shards: 4)
    ) {
        self.profile = profile
        self.configuration = configuration
        self.sink = sink
        let resolved = sink?.topology ?? topology
        self.mapper = { header, file in
            try RecordMapper(
                profile: profile, configuration: configuration, topology: resolved, header: header, file: file)
        }
    }

    public func run(input: String) throws -> PublishSummary {
        let reader = try RecordReader(
            path: input, kind: profile.format == .csv ? .csv(delimiter: profile.delimiter) : .jsonLines)
        let mapper = try self.mapper(reader.header, input)
        var summary = PublishSummary(input: input)
        let checkpointPath = self.checkpointPath ?? input + ".checkpoint"
        let fingerprint = try Self.fingerprint(input)
        var resumed = false
        if sink != nil, let checkpoint = Checkpoint.load(checkpointPath) {
            guard checkpoint.fingerprint == fingerprint else {
                throw AdapterError(
                    "\(checkpointPath): this checkpoint belongs to another version of \(input); delete it to start over"
                )
            }
            try reader.seek(to: checkpoint.offset, line: checkpoint.line)
            summary.resumedAtLine = checkpoint.line
            resumed = true
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
            try Checkpoint(fingerprint: fingerprint, offset: checkpointed.offset, line: checkpointed.line)
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
                try? FileManager.default.removeItem(atPath: checkpointPath)
            } else {
                try saveCheckpoint()
            }
        }
        onProgress?(
            PublishProgress(
                bytesRead: reader.fileSize, fileSize: reader.fileSize, records: records, rejected: summary.rejected))
        return summary
    }

    /// SHA-256 of the file's first 4 KiB and its header: a checkpoint only resumes the file it was made for.
    static func fingerprint(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw AdapterError("\(path): cannot open") }
        defer { try? handle.close() }
        let head = try handle.read(upToCount: 4096) ?? Data()
        return SHA256.hex([UInt8](head))
    }
}

/// The checkpoint file: `{"fingerprint": …, "offset": …, "line": …}`.
struct Checkpoint: Equatable {
    var fingerprint: String
    var offset: Int64
    var line: Int

    static func load(_ path: String) -> Checkpoint? {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let fingerprint = object["fingerprint"] as? String,
            let offset = (object["offset"] as? NSNumber)?.int64Value, let line = (object["line"] as? NSNumber)?.intValue
        else { return nil }
        return Checkpoint(fingerprint: fingerprint, offset: offset, line: line)
    }

    func save(_ path: String) throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("fingerprint", fingerprint)
        writer.field("offset", offset)
        writer.field("line", line)
        writer.endObject()
        try DurableFile.writeAtomically(writer.bytes + [0x0A], to: path)
    }
}

/// The rejects file: one JSON object per rejected record, `{"file", "line", "reason", "record"}`, with the original
/// text of the record, so a unit's IT staff can fix the export and feed the rejects back.
final class RejectsFile {
    private let fd: Int32
    private var pending: [UInt8] = []
    let path: String

    init(path: String, truncate: Bool) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | (truncate ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else { throw AdapterError("\(path): cannot open the rejects file") }
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
            try DurableFile.writeAll(fd, pending, path: path)
            pending.removeAll(keepingCapacity: true)
        }
        _ = fsync(fd)
    }
}

/// Small file helpers with fsync.
public enum DurableFile {
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw AdapterError("\(path): write failed (\(String(cString: strerror(errno))))") }
            written += n
        }
    }

    /// Temporary file in the same folder, fsync, rename: readers see the old or the new file, never half.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw AdapterError("\(tmp): cannot create (\(String(cString: strerror(errno))))") }
        do {
            try writeAll(fd, bytes, path: tmp)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        _ = fsync(fd)
        close(fd)
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw AdapterError("\(path): cannot replace (\(String(cString: strerror(errno))))")
        }
    }
}
