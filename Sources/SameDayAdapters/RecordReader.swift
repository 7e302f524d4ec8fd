import Foundation
import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

/// One record of an export as read: where it is (first physical line, byte range in the file), its original text,
/// and its fields (CSV) or an error that makes it unreadable (a stray quote, invalid UTF-8).
public struct SourceRecord: Sendable {
    /// 1-based physical line the record starts on (the CSV header is line 1).
    public var line: Int
    /// Byte offset just past the record and its line end: where a resumed run starts.
    public var endOffset: Int64
    /// The record's bytes without the line end, for the rejects file.
    public var text: [UInt8]
    /// CSV fields; empty for JSON lines (the mapper parses `text`).
    public var fields: [String]
    /// Why the record could not be split into fields.
    public var syntaxError: String?

    public init(line: Int, endOffset: Int64, text: [UInt8], fields: [String], syntaxError: String?) {
        self.line = line
        self.endOffset = endOffset
        self.text = text
        self.fields = fields
        self.syntaxError = syntaxError
    }
}

/// Streams records from a CSV (RFC 4180 with the core's reader, `SameDayCore.CSV`: quoted fields with separators and
/// line breaks inside, `""` escapes, CRLF or LF, `;` or `,`, optional UTF-8 byte-order mark) or JSON-lines file in constant memory: it holds one read
/// chunk plus the record being read. It can start at a byte offset (a checkpoint) after reading the header.
public final class RecordReader {
    public enum Kind: Sendable { case csv(delimiter: UInt8?), jsonLines }

    public let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var position = 0
    /// File offset of `buffer[0]`.
    private var bufferOffset: Int64 = 0
    private var atEOF = false
    private var line = 1
    private var kind: Kind
    public private(set) var delimiter: UInt8 = UInt8(ascii: ",")
    /// The CSV header's fields (trimmed); nil for JSON lines.
    public private(set) var header: [String]?
    /// Where the first data record starts (after the header).
    public private(set) var dataOffset: Int64 = 0
    public let fileSize: Int64
    private static let chunk = 1 << 20

    public init(path: String, kind: Kind) throws {
        self.path = path
        self.kind = kind
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw AdapterError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        var info = stat()
        fstat(fd, &info)
        fileSize = Int64(info.st_size)
        try fill()
        if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        if case .csv(let given) = kind {
            if let given, !CSV.isValidDelimiter(given) {
                throw AdapterError("\(path): the CSV delimiter cannot be a quote, a line break or a non-ASCII byte")
            }
            delimiter = given ?? Self.detectDelimiter(buffer[position...])
            guard let first = try nextRecord() else { throw AdapterError("\(path): empty file, no header line") }
            if let error = first.syntaxError { throw AdapterError("\(path):\(first.line): header: \(error)") }
            header = first.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        dataOffset = bufferOffset + Int64(position)
    }

    deinit { close(fd) }

    /// The byte offset of the next record.
    public var offset: Int64 { bufferOffset + Int64(position) }
    /// The line the next record starts on.
    public var nextLine: Int { line }

    /// Continues from a checkpoint: `offset` must be a record boundary at or after the header.
    public func seek(to offset: Int64, line: Int) throws {
        guard offset >= dataOffset, offset <= fileSize else {
            throw AdapterError("\(path): checkpoint offset \(offset) is outside the file (size \(fileSize))")
        }
        guard lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else { throw AdapterError("\(path): cannot seek") }
        buffer.removeAll(keepingCapacity: true)
        position = 0
        bufferOffset = offset
        atEOF = false
        self.line = line
        try fill()
    }

    /// The next non-blank record, or nil at the end of the file.
    /// The longest record an export may have (a dossier event is a few hundred bytes).
    static let maxRecordBytes = 4 << 20

    public func nextRecord() throws -> SourceRecord? {
        while true {
            if position >= buffer.count && atEOF { return nil }
            let scanned: Scan?
            switch kind {
            case .csv: scanned = scanCSV()
            case .jsonLines: scanned = scanLine()
            }
            guard let scan = scanned else {
                // The record runs past the buffer: keep its start, read more — up to a bound, so that one
                // unterminated quote near the start of a large export costs a refusal, not a rescan of the whole
                // file on every read.
                if atEOF { return nil }
                guard buffer.count - position < Self.maxRecordBytes else {
                    throw AdapterError(
                        "line \(line): a record longer than \(Self.maxRecordBytes / (1 << 20)) MiB (an unterminated quote?)")
                }
                compact()
                try fill()
                continue
            }
            let start = position
            position = scan.next
            let recordLine = line
            line += scan.lines
            let text = Array(buffer[start..<scan.end])
            if scan.blank { continue }
            return SourceRecord(
                line: recordLine, endOffset: bufferOffset + Int64(scan.next), text: text, fields: scan.fields,
                syntaxError: scan.error)
        }
    }

    private struct Scan {
        var fields: [String] = []
        var end: Int
        var next: Int
        var lines: Int
        var blank: Bool
        var error: String?
    }

    private func scanLine() -> Scan? {
        var i = position
        while i < buffer.count && buffer[i] != 0x0A { i += 1 }
        if i == buffer.count && !atEOF { return nil }
        var end = i
        if end > position && buffer[end - 1] == 0x0D { end -= 1 }
        let blank = buffer[position..<end].allSatisfy { $0 == 0x20 || $0 == 0x09 }
        return Scan(end: end, next: min(i + 1, buffer.count), lines: 1, blank: blank)
    }

    /// One CSV record with the package's one RFC 4180 reader (`SameDayCore.CSV`): the same quoting, line ends and
    /// errors as the configuration files, with this file's delimiter. An error makes only its record unreadable.
    private func scanCSV() -> Scan? {
        let scanned = buffer.withUnsafeBufferPointer {
            CSV.scanRecord($0, from: position, delimiter: delimiter, atEOF: atEOF)
        }
        guard let scan = scanned else { return nil }
        return Scan(
            fields: scan.fields, end: scan.end, next: scan.next, lines: scan.lines, blank: scan.isBlank,
            error: scan.error)
    }

    private func compact() {
        guard position > 0 else { return }
        buffer.removeFirst(position)
        bufferOffset += Int64(position)
        position = 0
    }

    private func fill() throws {
        let old = buffer.count
        buffer.reserveCapacity(old + Self.chunk)
        buffer.append(contentsOf: repeatElement(0, count: Self.chunk))
        let n = buffer.withUnsafeMutableBytes { raw in
            read(fd, raw.baseAddress! + old, Self.chunk)
        }
        guard n >= 0 else {
            buffer.removeLast(Self.chunk)
            throw AdapterError("\(path): read failed (\(String(cString: strerror(errno))))")
        }
        buffer.removeLast(Self.chunk - n)
        if n == 0 { atEOF = true }
    }

    /// `;` when the header line has more semicolons than commas outside quotes (Vietnamese spreadsheet programs
    /// export with `;` because `,` is the decimal separator), else `,`.
    static func detectDelimiter(_ bytes: ArraySlice<UInt8>) -> UInt8 {
        var semicolons = 0
        var commas = 0
        var quoted = false
        for c in bytes {
            if c == UInt8(ascii: "\"") { quoted.toggle() }
            if quoted { continue }
            if c == 0x0A { break }
            if c == UInt8(ascii: ";") { semicolons += 1 }
            if c == UInt8(ascii: ",") { commas += 1 }
        }
        return semicolons > commas ? UInt8(ascii: ";") : UInt8(ascii: ",")
    }
}

/// A failure of an adapter (input, checkpoint, spool) with a sentence for the unit's IT staff.
public struct AdapterError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
