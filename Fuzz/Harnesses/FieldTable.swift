// Fuzz target `fieldtable`: AMQP field tables as the consumer reads message headers (docs/fuzzing.md): rabbitmq-c's
// `amqp_decode_table` turns the bytes into a C table, `FieldTable.init(_: amqp_table_t)` into Swift. What was read
// is then encoded again (`CFieldTable`, `amqp_encode_table`) and decoded: it traps if that is not the same table.
import CAMQPFuzz
import CRabbitMQ

@testable import RabbitMQ

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFieldTable(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let first = decode(UnsafeRawBufferPointer(start: data, count: size)) else { return 0 }
    // A key is a short string (at most 255 bytes); invalid UTF-8 read as U+FFFD can make it longer, and
    // rabbitmq-c's encoder writes such a key's length modulo 256 (SameDay sends only its own short keys).
    guard keysFit(first) else { return 0 }
    var encoded = [UInt8](repeating: 0, count: 16 * size + 65_536)
    let written: Int? = CFieldTable.with(first) { table in
        var table = table
        var offset = 0
        let status = encoded.withUnsafeMutableBytes { buffer in
            amqp_encode_table(amqp_bytes_t(len: buffer.count, bytes: buffer.baseAddress), &table, &offset)
        }
        return status == 0 ? offset : nil
    }
    guard let written else { return 0 }  // larger than the buffer: nothing to compare
    guard let second = encoded.withUnsafeBytes({ decode(UnsafeRawBufferPointer(rebasing: $0[0..<written])) }),
        second == first
    else { fatalError("field table round trip differs: \(first)") }
    return 0
}

func decode(_ bytes: UnsafeRawBufferPointer) -> FieldTable? {
    var pool = amqp_pool_t()
    init_amqp_pool(&pool, 4096)
    defer { empty_amqp_pool(&pool) }
    var table = amqp_table_t()
    var offset = 0
    let status = amqp_decode_table(
        amqp_bytes_t(len: bytes.count, bytes: UnsafeMutableRawPointer(mutating: bytes.baseAddress)), &pool, &table,
        &offset)
    return status == 0 ? FieldTable(table) : nil
}

func keysFit(_ table: FieldTable) -> Bool {
    table.entries.allSatisfy { entry in
        guard entry.key.utf8.count <= 255 else { return false }
        if case .table(let nested) = entry.value { return keysFit(nested) }
        return true
    }
}
