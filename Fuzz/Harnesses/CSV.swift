// Fuzz target `csv`: the package's one RFC 4180 reader and its writer (docs/fuzzing.md). Traps on a difference:
// reading the whole file and streaming it in chunks must agree; what the writer writes from the records read (or
// from fields cut from the input) must read back to the same fields, byte for byte.
@testable import SameDayCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for delimiter in [UInt8(ascii: ","), UInt8(ascii: ";")] {
        let parsed = Result { () throws(CSVSyntaxError) in try CSV.parse(bytes, delimiter: delimiter) }
        // Streaming, as the file adapter reads: the buffer grows by `chunk` bytes whenever the scanner asks (the
        // scanner starts the record again each time, so the chunk grows with the input to keep a run linear-ish).
        let chunk = (size > 0 ? Int(bytes[0] % 7) + 1 : 1) * max(1, size / 256)
        let streamed = stream(bytes, delimiter: delimiter, chunk: chunk)
        switch parsed {
        case .success(let records):
            guard case .success(let again) = streamed, again == records else {
                fatalError("streaming differs from the whole-file read: \(records) vs \(streamed)")
            }
            // Write what was read, read it again: the same fields.
            let text = records.map { CSV.record($0.fields, delimiter: delimiter) }.joined(separator: "\r\n")
            roundTrip(text, records.map(\.fields), delimiter: delimiter)
        case .failure(let error):
            guard case .failure(let again) = streamed, again == error else {
                fatalError("streaming differs from the whole-file read: \(error) vs \(streamed)")
            }
        }
    }
    // Fields cut from the input at every 0x00 byte (invalid UTF-8 repaired), records at every 0x01 byte.
    let records = bytes.split(separator: 0x01, omittingEmptySubsequences: false).map { record in
        record.split(separator: 0x00, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }
    let text = records.map { CSV.record($0) }.joined(separator: "\n")
    roundTrip(text, records, delimiter: UInt8(ascii: ","))
    return 0
}

func roundTrip(_ text: String, _ fields: [[String]], delimiter: UInt8) {
    do {
        let back = try CSV.parse(Array(text.utf8), delimiter: delimiter).map(\.fields)
        guard back.map({ $0.map { Array($0.utf8) } }) == fields.map({ $0.map { Array($0.utf8) } }) else {
            fatalError("written \(fields), read back \(back) from \(Array(text.utf8))")
        }
    } catch {
        fatalError("the writer wrote a file the reader refuses: \(error) in \(Array(text.utf8))")
    }
}

func stream(_ bytes: [UInt8], delimiter: UInt8, chunk: Int) -> Result<[CSVRecord], CSVSyntaxError> {
    var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    var visible = min(bytes.count, start + chunk)
    var line = 1
    var records: [CSVRecord] = []
    while start < bytes.count {
        let atEOF = visible == bytes.count
        let scanned = bytes[0..<visible].withUnsafeBufferPointer {
            CSV.scanRecord($0, from: start, delimiter: delimiter, atEOF: atEOF)
        }
        guard let scan = scanned else {
            guard !atEOF else { fatalError("the scanner asked for more bytes at the end of the file") }
            visible = min(visible + chunk, bytes.count)
            continue
        }
        guard scan.next > start || scan.next == bytes.count else { fatalError("the scanner did not move") }
        if let error = scan.error { return .failure(CSVSyntaxError(message: error, line: line + scan.errorLineOffset)) }
        if !scan.isBlank { records.append(CSVRecord(line: line, fields: scan.fields)) }
        line += scan.lines
        start = scan.next
    }
    return .success(records)
}
