// Fuzz target `mapping`: the file adapter's mapping profiles and record mapping (docs/fuzzing.md). The input is a
// profile (JSON) and an export, separated by the first 0x00 byte; a profile that does not load is replaced by one of
// the shipped profiles (deploy/adapters/profiles), so exports are fuzzed too. The export is read with the adapter's
// `RecordReader` (streaming, from a file) and every record mapped with the HCMC 2022 configuration. Traps when the
// streaming reader and the core's whole-file CSV reader disagree on a file both accept, or when a mapped event does
// not decode back to itself.
import Foundation
import SameDayAdapters
import SameDayBroker
import SameDayCore

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
    .standardizedFileURL

func readFile(_ relative: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(relative).path) else {
        fatalError("cannot read \(relative) under \(root.path)")
    }
    return [UInt8](data)
}

let configuration: Configuration = {
    let folder = "deploy/config/hcmc-2022/"
    return try! Configuration.parse(
        ConfigurationFiles(
            units: readFile(folder + "units.csv"), catalog: readFile(folder + "catalog.csv"),
            calendars: readFile(folder + "calendars.json"), alerting: readFile(folder + "alerting.json")))
}()
let shippedProfiles = ["motcua-q1", "dvc-national-codes", "canonical-jsonl"].map { name in
    try! MappingProfile.parse(readFile("deploy/adapters/profiles/\(name).json"), file: name)
}
let names = SameDayProducerNames()
/// The mapper's clock (the plausible-time window ends a day after it): fixed, so a run is reproducible.
let fuzzNow = RFC3339.parse("2030-01-01T00:00:00+07:00")!
let exportPath: String = {
    let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(folder)/sameday-fuzz-mapping-\(getpid()).export"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMapping(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let cut = input.firstIndex(of: 0) ?? size
    let profileBytes = Array(input[0..<cut])
    let export = cut < size ? Array(input[(cut + 1)...]) : []
    let profile =
        (try? MappingProfile.parse(profileBytes, file: "fuzz"))
        ?? shippedProfiles[Int(profileBytes.first ?? 0) % shippedProfiles.count]
    guard FileManager.default.createFile(atPath: exportPath, contents: Data(export)) else {
        fatalError("cannot write \(exportPath)")
    }
    let kind: RecordReader.Kind = profile.format == .csv ? .csv(delimiter: profile.delimiter) : .jsonLines
    guard let reader = try? RecordReader(path: exportPath, kind: kind) else { return 0 }
    var records: [SourceRecord] = []
    while let record = try? reader.nextRecord() { records.append(record) }
    if profile.format == .csv {
        agree(records, reader: reader, export: export)
    }
    guard
        let mapper = try? RecordMapper(
            profile: profile, configuration: configuration, names: names, header: reader.header, file: "fuzz",
            now: fuzzNow)
    else { return 0 }
    for record in records {
        if case .event(let event, _) = mapper.map(record) {
            guard (try? DossierEvent.decode(event.encoded())) == event else {
                fatalError("a mapped event does not decode back: \(event.encoded())")
            }
        }
    }
    return 0
}

/// When the whole-file reader accepts the export, the streaming reader read the same records (header apart).
func agree(_ records: [SourceRecord], reader: RecordReader, export: [UInt8]) {
    guard let whole = try? CSV.parse(export, delimiter: reader.delimiter) else { return }
    let streamed = records.map { CSVRecord(line: $0.line, fields: $0.fields) }
    guard records.allSatisfy({ $0.syntaxError == nil }), Array(whole.dropFirst()) == streamed else {
        fatalError("RecordReader read \(streamed), CSV.parse \(whole)")
    }
}
