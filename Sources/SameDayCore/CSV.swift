/// One CSV record with the physical line it starts on (1-based, the header is line 1).
public struct CSVRecord: Sendable, Equatable {
    public var line: Int
    public var fields: [String]

    public init(line: Int, fields: [String]) {
        self.line = line
        self.fields = fields
    }
}

/// An RFC 4180 CSV error with its line.
public struct CSVSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int

    public init(message: String, line: Int) {
        self.message = message
        self.line = line
    }

    public var description: String { "line \(line): \(message)" }
}

/// The package's one RFC 4180 reader and writer, on bytes (never on Swift characters: a quote followed by a
/// combining mark is one `Character` but still a quote in the file).
///
/// Reading: UTF-8 with an optional byte-order mark, quoted fields (with `""` and line breaks inside), records ended
/// by CRLF or LF (a lone LF is accepted; a carriage return outside quotes that is not followed by a line feed is an
/// error, as RFC 4180 allows CR only as part of CRLF), a configurable one-byte delimiter (`,` by default; the file
/// adapter also reads `;`). Empty lines between records are skipped. Every syntax error names its physical line.
///
/// `scanRecord` reads one record from a buffer that may end in the middle of the file (the adapters stream large
/// exports); `parse` reads a whole file. Both share one state machine, so every reader of the package agrees.
public enum CSV {
    public static let comma = UInt8(ascii: ",")
    static let quote: UInt8 = 0x22
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Whether `byte` can separate fields: an ASCII byte other than a quote, CR or LF.
    public static func isValidDelimiter(_ byte: UInt8) -> Bool {
        byte < 0x80 && byte != quote && byte != cr && byte != lf
    }

    /// One record read by `scanRecord`.
    public struct Scan: Sendable {
        /// The fields (a field with invalid UTF-8 is empty and `error` says so).
        public var fields: [String]
        /// Index just past the record's last byte, before its line end.
        public var end: Int
        /// Index where the next record starts (past the line end).
        public var next: Int
        /// Physical lines the record spans (1 + line feeds inside quoted fields).
        public var lines: Int
        /// An empty line: no field at all (a line holding `""` is one empty field, not blank).
        public var isBlank: Bool
        /// The first syntax error of the record, if any; the record was still read to its line end.
        public var error: String?
        /// The error's physical line, counted from the record's first line (0 = the record's first line).
        public var errorLineOffset: Int
    }

    /// Reads the record that starts at `start` in `b`. Returns nil when the record may continue past the end of `b`
    /// and `atEOF` is false (read more and call again from the same `start`). At `start == b.count` with `atEOF`, a
    /// blank record is returned.
    public static func scanRecord(
        _ b: UnsafeBufferPointer<UInt8>, from start: Int, delimiter: UInt8 = comma, atEOF: Bool
    ) -> Scan? {
        precondition(isValidDelimiter(delimiter), "a CSV delimiter is an ASCII byte other than a quote, CR or LF")
        let n = b.count
        var i = start
        var fields: [String] = []
        var lines = 1
        var error: String?
        var errorLineOffset = 0
        var scratch: [UInt8] = []

        func fail(_ message: String) {
            if error == nil {
                error = message
                errorLineOffset = lines - 1
            }
        }
        func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
            if let s = String(validating: bytes, as: UTF8.self) { return s }
            fail("invalid UTF-8 in field \(fields.count + 1)")
            return ""
        }
        func done(end: Int, next: Int) -> Scan {
            let blank = fields.count == 1 && end == start && fields[0].isEmpty
            return Scan(
                fields: fields, end: end, next: next, lines: lines, isBlank: blank, error: error,
                errorLineOffset: errorLineOffset)
        }

        // Scans unquoted bytes from `i` to the next delimiter, line end or end of buffer. Returns false when more
        // bytes are needed to decide (a CR as the last byte before the end of a partial buffer).
        func scanUnquoted(quoteIsError: Bool) -> Bool {
            while i < n {
                let c = b[i]
                if c == delimiter || c == lf { return true }
                if c == cr {
                    if i + 1 == n {
                        if !atEOF { return false }
                    } else if b[i + 1] == lf {
                        return true
                    }
                    fail("carriage return not followed by a line feed (field \(fields.count + 1))")
                } else if c == quote && quoteIsError {
                    fail("quote inside an unquoted field (field \(fields.count + 1))")
                }
                i += 1
            }
            return atEOF
        }

        while true {
            if i < n && b[i] == quote {
                // A quoted field: up to the closing quote, `""` is one quote, anything else is content.
                i += 1
                scratch.removeAll(keepingCapacity: true)
                var segment = i
                var closed = false
                while i < n {
                    let c = b[i]
                    if c == quote {
                        if i + 1 < n {
                            if b[i + 1] == quote {
                                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[segment...i]))
                                i += 2
                                segment = i
                                continue
                            }
                        } else if !atEOF {
                            return nil  // cannot tell `""` from a closing quote yet
                        }
                        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[segment..<i]))
                        i += 1
                        closed = true
                        break
                    }
                    if c == lf { lines += 1 }
                    i += 1
                }
                guard closed else {
                    if !atEOF { return nil }
                    scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[segment..<n]))
                    let s = scratch.withUnsafeBufferPointer { text($0) }
                    fields.append(s)
                    if error == nil {
                        error = "unterminated quoted field"
                        errorLineOffset = 0
                    }
                    return done(end: n, next: n)
                }
                fields.append(scratch.withUnsafeBufferPointer { text($0) })
                // After the closing quote: a delimiter, a line end or the end of the file, nothing else.
                if i < n && b[i] != delimiter && b[i] != lf && !(b[i] == cr && i + 1 < n && b[i + 1] == lf) {
                    if b[i] == cr && i + 1 == n && !atEOF { return nil }
                    fail(
                        b[i] == cr
                            ? "carriage return not followed by a line feed after a closing quote (field \(fields.count))"
                            : "text after a closing quote (field \(fields.count))")
                    // Recovery: the rest of the field, to the next delimiter or line end, is read and dropped.
                    guard scanUnquoted(quoteIsError: false) else { return nil }
                }
            } else {
                let s = i
                guard scanUnquoted(quoteIsError: true) else { return nil }
                fields.append(text(UnsafeBufferPointer(rebasing: b[s..<i])))
            }
            // Here b[i] is a delimiter, LF, CR LF, or i == n (end of the file).
            if i == n {
                if !atEOF { return nil }
                return done(end: n, next: n)
            }
            if b[i] == delimiter {
                i += 1
                continue
            }
            return done(end: i, next: b[i] == lf ? i + 1 : i + 2)
        }
    }

    /// Reads a whole file into records (blank lines skipped); the first syntax error is thrown with its line.
    public static func parse(_ bytes: [UInt8], delimiter: UInt8 = comma) throws(CSVSyntaxError) -> [CSVRecord] {
        let result: Result<[CSVRecord], CSVSyntaxError> = bytes.withUnsafeBufferPointer { b in
            var i = b.starts(with: byteOrderMark) ? 3 : 0
            var line = 1
            var records: [CSVRecord] = []
            while i < b.count {
                guard let scan = scanRecord(b, from: i, delimiter: delimiter, atEOF: true) else {
                    preconditionFailure("a scan at the end of the file always completes")
                }
                if let error = scan.error {
                    return .failure(CSVSyntaxError(message: error, line: line + scan.errorLineOffset))
                }
                if !scan.isBlank { records.append(CSVRecord(line: line, fields: scan.fields)) }
                line += scan.lines
                i = scan.next
            }
            return .success(records)
        }
        return try result.get()
    }

    /// Quotes a field when it needs it: it holds the delimiter, a quote, CR or LF, or starts with a byte-order mark
    /// (which a reader would take for the file's). Quotes are doubled byte by byte.
    public static func escape(_ s: String) -> String { escape(s, delimiter: comma) }

    /// `escape`, appended to `out` as bytes (a file written row by row makes no string per field).
    public static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            guard needsQuotes(bytes, delimiter: comma) else {
                out.append(contentsOf: bytes)
                return
            }
            out.append(quote)
            for c in bytes {
                if c == quote { out.append(quote) }
                out.append(c)
            }
            out.append(quote)
        }
    }

    private static func needsQuotes(_ bytes: some Collection<UInt8>, delimiter: UInt8) -> Bool {
        bytes.contains { $0 == delimiter || $0 == quote || $0 == lf || $0 == cr } || bytes.starts(with: byteOrderMark)
    }

    /// `escape` for a file with another delimiter.
    public static func escape(_ s: String, delimiter: UInt8) -> String {
        let utf8 = s.utf8
        guard needsQuotes(utf8, delimiter: delimiter) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 2)
        out.append(quote)
        for c in utf8 {
            if c == quote { out.append(quote) }
            out.append(c)
        }
        out.append(quote)
        // Quotes were added next to ASCII bytes or at the ends: still valid UTF-8, every other byte unchanged.
        return String(decoding: out, as: UTF8.self)
    }

    /// One record as written (without its line end): escaped fields joined by the delimiter. A record whose only
    /// field is empty is written `""`, since an empty line is no record.
    public static func record(_ fields: [String], delimiter: UInt8 = comma) -> String {
        if fields.count == 1 && fields[0].isEmpty { return "\"\"" }
        var out = ""
        for (k, f) in fields.enumerated() {
            if k > 0 { out.unicodeScalars.append(Unicode.Scalar(delimiter)) }
            out += escape(f, delimiter: delimiter)
        }
        return out
    }
}
