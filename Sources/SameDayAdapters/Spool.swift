import Foundation
import SameDayFiles
import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

/// The durable local spool: canonical events the broker could not take (unreachable, or blocked by an alarm),
/// kept on disk in arrival order until they are published.
///
/// A folder with `spool.jsonl` (append-only, one canonical event per line, fsynced before `append` returns) and
/// `spool.offset` (how many bytes of it are published and confirmed; replaced atomically). A torn last line from a
/// crash mid-append is cut off on open: its events were never reported as stored. When everything is published the
/// file is truncated. The spool is bounded: past `capacityBytes`, `append` fails with `SpoolError.full` and the
/// caller refuses the events (the HTTP receiver answers 503) instead of losing them.
public final class Spool: @unchecked Sendable {
    public let directory: String
    public let capacityBytes: Int64
    private let lock = NSLock()
    private let flushLock = NSLock()
    private let fd: Int32
    private let lockFD: Int32
    private var size: Int64 = 0
    private var published: Int64 = 0
    private var pendingEvents = 0
    private var dataPath: String { directory + "/spool.jsonl" }
    private var offsetPath: String { directory + "/spool.offset" }

    /// Default bound: 256 MiB, about a million events, days of a district's traffic.
    public static let defaultCapacity: Int64 = 256 << 20

    public init(directory: String, capacityBytes: Int64 = Spool.defaultCapacity) throws {
        self.directory = directory
        self.capacityBytes = capacityBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        lockFD = try Self.lock(directory)
        do {
            fd = try AdapterError.files { () throws(FileError) in try DurableFile.openForAppending(
                directory + "/spool.jsonl", mode: DurableFile.privateMode, read: true) }
        } catch {
            close(lockFD)
            throw error
        }
        do {
            try recover()
        } catch {
            close(fd)
            close(lockFD)
            throw error
        }
    }

    deinit {
        close(fd)
        close(lockFD)  // releases the flock
    }

    /// Takes the spool's exclusive lock (`spool.lock`, flock) for the life of this object: two processes appending
    /// to one spool, or one truncating it after a flush while the other appends, would lose fsynced events. The
    /// lock file names its holder, so a second run can say who has it.
    static func lock(_ directory: String) throws -> Int32 {
        let path = directory + "/spool.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AdapterError("spool \(directory): cannot open spool.lock (\(String(cString: strerror(errno))))")
        }
        // A holder that is just ending (a previous run's exit, a receiver being replaced) gets a second to let go.
        let patience = ContinuousClock.now + .seconds(1)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let busy = errno == EWOULDBLOCK
            if busy && ContinuousClock.now < patience {
                usleep(50_000)
                continue
            }
            let why = String(cString: strerror(errno))
            var holder = ""
            if busy, let text = try? String(contentsOfFile: path, encoding: .utf8) {
                holder = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            close(fd)
            if busy {
                throw AdapterError(
                    "spool \(directory) is in use by another process (\(holder.isEmpty ? "holder unknown" : holder); lock file \(path)): "
                        + "two runs must not share a spool. Wait for that run to end, or give this one its own --spool")
            }
            throw AdapterError("spool \(directory): cannot lock spool.lock (\(why))")
        }
        // Who holds it, for the message above; informative only, so it is not fsynced.
        let arguments = ProcessInfo.processInfo.arguments
        let command = ([(arguments.first as NSString?)?.lastPathComponent ?? "?"] + arguments.dropFirst().prefix(2))
            .joined(separator: " ")
        let holder = "process \(getpid()) (\(command)), since \(RFC3339.format(Int64(Date().timeIntervalSince1970)))\n"
        if ftruncate(fd, 0) == 0 { try? DurableFile.writeAll(fd, Array(holder.utf8), path: path) }
        return fd
    }

    private func recover() throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw AdapterError("spool \(directory): cannot stat spool.jsonl (\(String(cString: strerror(errno))))")
        }
        size = Int64(info.st_size)
        if let text = try? String(contentsOfFile: offsetPath, encoding: .utf8),
            let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            published = min(max(0, value), size)
        }
        // Count pending events and cut a torn last line (written but never fsynced and acknowledged).
        var lastNewline = published
        var count = 0
        var offset = published
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while offset < size {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw AdapterError("spool \(directory): cannot read spool.jsonl (\(String(cString: strerror(errno))))")
            }
            for i in 0..<n where chunk[i] == 0x0A {
                count += 1
                lastNewline = offset + Int64(i) + 1
            }
            offset += Int64(n)
        }
        if lastNewline < size {
            try AdapterError.files { () throws(FileError) in try DurableFile.truncate(fd, to: lastNewline, path: dataPath) }
            size = lastNewline
        }
        pendingEvents = count
    }

    /// What a spool folder holds, read without taking its lock or changing anything (for `sameday publish
    /// --status` while a run or a receiver uses the spool), and who holds the lock if someone does.
    public static func inspect(directory: String, capacityBytes: Int64 = Spool.defaultCapacity) throws -> (
        status: SpoolStatus, holder: String?
    ) {
        var status = SpoolStatus(directory: directory, pendingEvents: 0, pendingBytes: 0, capacityBytes: capacityBytes)
        var holder: String?
        let lockPath = directory + "/spool.lock"
        let lockFD = open(lockPath, O_RDONLY | O_CLOEXEC)
        if lockFD >= 0 {
            defer { close(lockFD) }
            if flock(lockFD, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK {
                holder =
                    (try? String(contentsOfFile: lockPath, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
            }
        }
        guard let data = FileManager.default.contents(atPath: directory + "/spool.jsonl") else {
            guard FileManager.default.fileExists(atPath: directory) else {
                throw AdapterError("spool \(directory): no such folder")
            }
            return (status, holder)
        }
        var published: Int64 = 0
        if let text = try? String(contentsOfFile: directory + "/spool.offset", encoding: .utf8),
            let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            published = min(max(0, value), Int64(data.count))
        }
        var end = published
        var count = 0
        for (i, byte) in data[Int(published)...].enumerated() where byte == 0x0A {
            count += 1
            end = published + Int64(i) + 1
        }
        status.pendingEvents = count
        status.pendingBytes = end - published
        return (status, holder)
    }

    /// What the spool holds now.
    public var status: SpoolStatus {
        lock.lock()
        defer { lock.unlock() }
        return SpoolStatus(
            directory: directory, pendingEvents: pendingEvents, pendingBytes: size - published,
            capacityBytes: capacityBytes)
    }

    /// Appends events in order and fsyncs; once it returns they survive a crash of this process or machine.
    public func append(_ events: [DossierEvent]) throws(SpoolError) {
        guard !events.isEmpty else { return }
        var bytes: [UInt8] = []
        for event in events {
            bytes.append(contentsOf: event.encoded().utf8)
            bytes.append(0x0A)
        }
        lock.lock()
        defer { lock.unlock() }
        guard size - published + Int64(bytes.count) <= capacityBytes else {
            throw .full(directory: directory, pendingBytes: size - published, capacityBytes: capacityBytes)
        }
        do throws(FileError) {
            try DurableFile.writeAll(fd, bytes, path: dataPath)
            try DurableFile.sync(fd, path: dataPath)
        } catch {
            // Cut what was (half) written, so the file stays whole lines of acknowledged events.
            _ = ftruncate(fd, off_t(size))
            throw .io(directory: directory, message: error.description)
        }
        size += Int64(bytes.count)
        pendingEvents += events.count
    }

    /// Publishes every pending event in order, in batches: `publish` must return only once the whole batch is
    /// confirmed by the broker; the spool then records the batch as done. If `publish` throws, the batch stays
    /// (a later flush sends it again: duplicates are dropped by the worker's dedupe). Returns the number flushed.
    @discardableResult
    public func flush(batchSize: Int = 1000, _ publish: ([DossierEvent]) throws -> Void) throws -> Int {
        flushLock.lock()
        defer { flushLock.unlock() }
        var flushed = 0
        while true {
            lock.lock()
            let (start, end) = (published, size)
            lock.unlock()
            guard start < end else { break }
            let (events, consumed) = try read(from: start, end: end, limit: batchSize)
            if !events.isEmpty { try publish(events) }
            lock.lock()
            published = start + consumed
            pendingEvents -= events.count
            var failure: (any Error)?
            if published == size {
                // Everything is out: start the file again so it does not grow for ever. The offset is written
                // as 0 right after; a crash between the two leaves an offset past the end, which `recover` clamps.
                do {
                    try AdapterError.files { () throws(FileError) in try DurableFile.truncate(fd, to: 0, path: dataPath) }
                    size = 0
                    published = 0
                    pendingEvents = 0
                } catch {
                    failure = error
                }
            }
            let offset = published
            lock.unlock()
            if let failure { throw failure }
            try writeOffset(offset)
            flushed += events.count
        }
        return flushed
    }

    private func read(from start: Int64, end: Int64, limit: Int) throws -> ([DossierEvent], Int64) {
        var events: [DossierEvent] = []
        var consumed: Int64 = 0
        var chunk = [UInt8](repeating: 0, count: Int(min(end - start, 4 << 20)))
        var n = -1
        repeat {
            n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(start)) }
        } while n < 0 && errno == EINTR
        guard n > 0 else {
            throw AdapterError("spool \(directory): cannot read spool.jsonl (\(String(cString: strerror(errno))))")
        }
        var lineStart = 0
        for i in 0..<n where chunk[i] == 0x0A {
            let line = Array(chunk[lineStart..<i])
            // Every line was written from a valid event; one that no longer decodes is skipped rather than
            // blocking everything behind it.
            if let event = try? DossierEvent.decode(bytes: line) { events.append(event) }
            lineStart = i + 1
            consumed = Int64(i + 1)
            if events.count >= limit { break }
        }
        if consumed == 0 { throw AdapterError("spool \(directory): a line longer than 4 MiB") }
        return (events, consumed)
    }

    private func writeOffset(_ offset: Int64) throws {
        do {
            try AdapterError.files { () throws(FileError) in try DurableFile.writeAtomically(Array("\(offset)\n".utf8), to: offsetPath) }
        } catch {
            throw AdapterError("spool \(directory): cannot write spool.offset: \(error)")
        }
    }
}

/// The spool's state, for `sameday publish --status` and the receiver's metrics.
public struct SpoolStatus: Sendable, Equatable, CustomStringConvertible {
    public var directory: String
    public var pendingEvents: Int
    public var pendingBytes: Int64
    public var capacityBytes: Int64

    public var description: String {
        let percent = capacityBytes > 0 ? Double(pendingBytes) * 100 / Double(capacityBytes) : 0
        return
            "spool \(directory): \(pendingEvents) events waiting for the broker, \(pendingBytes) of \(capacityBytes) bytes (\(String(format: "%.1f", percent)) % full)"
    }

    /// Prometheus text exposition lines.
    public var metrics: String {
        """
        # HELP sameday_spool_pending_events Events in the local spool waiting for the broker.
        # TYPE sameday_spool_pending_events gauge
        sameday_spool_pending_events \(pendingEvents)
        # HELP sameday_spool_pending_bytes Bytes of the spool not yet published.
        # TYPE sameday_spool_pending_bytes gauge
        sameday_spool_pending_bytes \(pendingBytes)
        # HELP sameday_spool_capacity_bytes The spool's size bound.
        # TYPE sameday_spool_capacity_bytes gauge
        sameday_spool_capacity_bytes \(capacityBytes)

        """
    }
}

/// Why the spool refused events.
public enum SpoolError: Error, Sendable, CustomStringConvertible {
    case full(directory: String, pendingBytes: Int64, capacityBytes: Int64)
    case io(directory: String, message: String)

    public var description: String {
        switch self {
        case .full(let directory, let pending, let capacity):
            "spool \(directory) is full (\(pending) of \(capacity) bytes waiting): the broker has been unreachable too long; events are refused, not lost. Restore the broker connection (the spool then empties) or raise the spool's capacity"
        case .io(let directory, let message): "spool \(directory): \(message)"
        }
    }
}
