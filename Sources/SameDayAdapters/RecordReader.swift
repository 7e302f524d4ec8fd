import Foundation

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

/// Streams records from a CSV (RFC 4180: quoted fields with separators and line breaks inside, `""` escapes, CRLF
/// or LF, `;` or `,`, optional UTF-8 byte-order mark) or JSON-lines file in constant memory: it holds one read
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
    public func nextRecord() throws -> SourceRecord? {
        while true {
            if position >= buffer.count && atEOF { return nil }
            let scanned: Scan?
            switch kind {
            case .csv: scanned = scanCSV()
            case .jsonLines: scanned = scanLine()
            }
            guard let scan = scanned else {
                // The record runs past the buffer: keep its start, read more.
                if atEOF { return nil }
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

    private func scanCSV() -> Scan? {
        let quote = UInt8(ascii: "\"")
        var i = position
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var wasQuoted = false
        var lines = 1
        var error: String?
        func finishField() {
            if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                fields.append("")
                error = error ?? "invalid UTF-8 in field \(fields.count)"
            }
            field.removeAll(keepingCapacity: true)
            wasQuoted = false
        }
        while i < buffer.count {
            let c = buffer[i]
            if quoted {
                if c == quote {
                    if i + 1 < buffer.count {
                        if buffer[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                    } else if !atEOF {
                        return nil  // cannot tell "" from a closing quote yet
                    }
                    quoted = false
                    i += 1
                    continue
                }
                if c == 0x0A { lines += 1 }
                field.append(c)
                i += 1
                continue
            }
            switch c {
            case quote:
                if field.isEmpty && !wasQuoted {
                    quoted = true
                    wasQuoted = true
                } else {
                    error = error ?? "quote inside an unquoted field (field \(fields.count + 1))"
                    field.append(c)
                }
                i += 1
            case delimiter:
                finishField()
                i += 1
            case 0x0A, 0x0D:
                var next = i + 1
                if c == 0x0D {
                    if i + 1 == buffer.count && !atEOF { return nil }
                    if i + 1 < buffer.count && buffer[i + 1] == 0x0A { next = i + 2 }
                }
                let blank = fields.isEmpty && field.isEmpty && !wasQuoted
                finishField()
                return Scan(fields: fields, end: i, next: next, lines: lines, blank: blank, error: error)
            default:
                if wasQuoted {
                    error = error ?? "text after a closing quote (field \(fields.count + 1))"
                }
                field.append(c)
                i += 1
            }
        }
        guard atEOF else { return nil }
        if quoted { error = error ?? "unterminated quoted field" }
        let blank = fields.isEmpty && field.isEmpty && !wasQuoted
        finishField()
        return Scan(fields: fields, end: i, next: i, lines: lines, blank: blank, error: error)
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
