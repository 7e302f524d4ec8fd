/// One CSV record with the physical line it starts on (1-based, the header is line 1).
struct CSVRecord {
    var line: Int
    var fields: [String]
}

/// An RFC 4180 CSV error with its line.
struct CSVSyntaxError: Error {
    var message: String
    var line: Int
}

/// RFC 4180 reader: UTF-8 with an optional byte-order mark, quoted fields (with `""` and line breaks inside),
/// LF or CRLF line ends. Blank lines are skipped.
enum CSV {
    static func parse(_ bytes: [UInt8]) throws(CSVSyntaxError) -> [CSVRecord] {
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var records: [CSVRecord] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var recordLine = 1
        var atRecordStart = true

        func text(_ f: [UInt8], _ line: Int) throws(CSVSyntaxError) -> String {
            guard let s = String(validating: f, as: UTF8.self) else {
                throw CSVSyntaxError(message: "invalid UTF-8", line: line)
            }
            return s
        }

        while i < bytes.count {
            if atRecordStart {
                // Skip blank lines between records.
                if bytes[i] == 0x0A { line += 1; i += 1; continue }
                if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { line += 1; i += 2; continue }
                recordLine = line
                atRecordStart = false
            }
            let c = bytes[i]
            if c == 0x22 && field.isEmpty {
                // A quoted field.
                i += 1
                var closed = false
                while i < bytes.count {
                    if bytes[i] == 0x22 {
                        if i + 1 < bytes.count, bytes[i + 1] == 0x22 { field.append(0x22); i += 2; continue }
                        i += 1
                        closed = true
                        break
                    }
                    if bytes[i] == 0x0A { line += 1 }
                    field.append(bytes[i])
                    i += 1
                }
                guard closed else { throw CSVSyntaxError(message: "unterminated quoted field", line: recordLine) }
                guard i == bytes.count || bytes[i] == 0x2C || bytes[i] == 0x0A || bytes[i] == 0x0D else {
                    throw CSVSyntaxError(message: "text after a closing quote", line: line)
                }
                fields.append(try text(field, line))
                field = []
                if i < bytes.count, bytes[i] == 0x2C {
                    i += 1
                    if i == bytes.count || bytes[i] == 0x0A || bytes[i] == 0x0D { fields.append("") }
                }
                continue
            }
            switch c {
            case 0x2C:
                fields.append(try text(field, line))
                field = []
                i += 1
                if i == bytes.count || bytes[i] == 0x0A || bytes[i] == 0x0D { fields.append("") }
            case 0x0D where i + 1 < bytes.count && bytes[i + 1] == 0x0A, 0x0A:
                if !field.isEmpty || fields.isEmpty { fields.append(try text(field, line)) }
                field = []
                records.append(CSVRecord(line: recordLine, fields: fields))
                fields = []
                atRecordStart = true
                i += c == 0x0D ? 2 : 1
                line += 1
            case 0x22:
                throw CSVSyntaxError(message: "quote inside an unquoted field", line: line)
            default:
                field.append(c)
                i += 1
            }
        }
        if !atRecordStart {
            if !field.isEmpty || fields.isEmpty { fields.append(try text(field, line)) }
            records.append(CSVRecord(line: recordLine, fields: fields))
        }
        return records
    }

    /// Quotes a field when it needs it.
    static func escape(_ s: String) -> String {
        if s.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }
}

extension String {
    /// `replacingOccurrences` without Foundation, for the single-character cases the core needs.
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    fileprivate func range(of target: String) -> Range<Index>? {
        guard let first = target.first else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i] == first, self[i...].hasPrefix(target) {
                return i..<index(i, offsetBy: target.count)
            }
            i = index(after: i)
        }
        return nil
    }
}
