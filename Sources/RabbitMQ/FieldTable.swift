import CRabbitMQ

/// A value in an AMQP field table: queue and exchange arguments, message headers, client properties.
public indirect enum FieldValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case bool(Bool)
    /// Sent as a signed 64-bit integer (`l`), which RabbitMQ accepts for every numeric argument.
    case int(Int64)
    case table(FieldTable)

    public var description: String {
        switch self {
        case .string(let text): "\"\(text)\""
        case .bool(let flag): "\(flag)"
        case .int(let number): "\(number)"
        case .table(let table): "\(table.entries)"
        }
    }

    public var stringValue: String? { if case .string(let text) = self { text } else { nil } }
    public var intValue: Int64? { if case .int(let number) = self { number } else { nil } }
}

/// An ordered AMQP field table. Order is kept so that what we send is what we declared, byte for byte.
public struct FieldTable: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    public var entries: [(key: String, value: FieldValue)]

    public init(_ entries: [(key: String, value: FieldValue)] = []) { self.entries = entries }
    public init(dictionaryLiteral elements: (String, FieldValue)...) {
        entries = elements.map { (key: $0.0, value: $0.1) }
    }

    public subscript(key: String) -> FieldValue? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    public var isEmpty: Bool { entries.isEmpty }

    public static func == (lhs: FieldTable, rhs: FieldTable) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }
}

/// Owns the C memory of an `amqp_table_t` built from a `FieldTable`; the table is valid while this object lives.
final class CFieldTable {
    private var allocations: [UnsafeMutableRawPointer] = []
    private(set) var table = amqp_table_t(num_entries: 0, entries: nil)

    init(_ source: FieldTable) {
        table = build(source)
    }

    deinit {
        for pointer in allocations { pointer.deallocate() }
    }

    /// Runs `body` with the C form of `source`; nothing of it may escape the closure.
    static func with<R>(_ source: FieldTable, _ body: (amqp_table_t) throws -> R) rethrows -> R {
        if source.isEmpty { return try body(amqp_empty_table) }
        let owner = CFieldTable(source)
        return try withExtendedLifetime(owner) { try body(owner.table) }
    }

    private func build(_ source: FieldTable) -> amqp_table_t {
        guard !source.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: source.entries.count)
        allocations.append(UnsafeMutableRawPointer(entries))
        for (index, entry) in source.entries.enumerated() {
            (entries + index).initialize(to: amqp_table_entry_t(key: bytes(entry.key), value: field(entry.value)))
        }
        return amqp_table_t(num_entries: Int32(source.entries.count), entries: entries)
    }

    private func bytes(_ text: String) -> amqp_bytes_t {
        let utf8 = Array(text.utf8)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(utf8.count, 1), alignment: 1)
        allocations.append(memory)
        utf8.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: utf8.count) }
        return amqp_bytes_t(len: utf8.count, bytes: memory)
    }

    private func field(_ value: FieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let text):
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes(text)
        case .bool(let flag):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = flag ? 1 : 0
        case .int(let number):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = number
        case .table(let nested):
            field.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            field.value.table = build(nested)
        }
        return field
    }
}

extension FieldTable {
    /// Tables nested deeper than this in a received table are kept as the string `"…"`: a header's nesting is
    /// chosen by whoever published the message, and reading it must not recurse without bound.
    static let maxReadDepth = 32

    /// Reads a C table (message headers). Kinds SameDay never sends (arrays, decimals, floats) are kept as strings.
    init(_ table: amqp_table_t) { self.init(table, depth: 0) }

    init(_ table: amqp_table_t, depth: Int) {
        var entries: [(key: String, value: FieldValue)] = []
        let count = table.entries == nil ? 0 : max(0, Int(table.num_entries))
        entries.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = table.entries?[index] else { break }
            entries.append((entry.key.string, FieldValue(entry.value, depth: depth)))
        }
        self.init(entries)
    }
}

extension FieldValue {
    init(_ field: amqp_field_value_t) { self.init(field, depth: 0) }

    init(_ field: amqp_field_value_t, depth: Int) {
        switch UInt32(field.kind) {
        case AMQP_FIELD_KIND_UTF8.rawValue, AMQP_FIELD_KIND_BYTES.rawValue: self = .string(field.value.bytes.string)
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: self = .bool(field.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: self = .int(Int64(field.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: self = .int(Int64(field.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: self = .int(Int64(field.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: self = .int(Int64(field.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: self = .int(Int64(field.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: self = .int(Int64(field.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue, AMQP_FIELD_KIND_TIMESTAMP.rawValue: self = .int(field.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: self = .int(Int64(truncatingIfNeeded: field.value.u64))
        case AMQP_FIELD_KIND_TABLE.rawValue:
            self =
                depth < FieldTable.maxReadDepth ? .table(FieldTable(field.value.table, depth: depth + 1)) : .string("…")
        case AMQP_FIELD_KIND_F64.rawValue: self = .string("\(field.value.f64)")
        case AMQP_FIELD_KIND_F32.rawValue: self = .string("\(field.value.f32)")
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            guard depth < FieldTable.maxReadDepth else {
                self = .string("…")
                return
            }
            var items: [String] = []
            let array = field.value.array
            let count = array.entries == nil ? 0 : max(0, Int(array.num_entries))
            for index in 0..<count {
                if let entry = array.entries?[index] { items.append(FieldValue(entry, depth: depth + 1).description) }
            }
            self = .string("[" + items.joined(separator: ",") + "]")
        default: self = .string("")
        }
    }
}
