import CRabbitMQ
import FoundationEssentials
import Glibc

/// C memory for one call into rabbitmq-c: strings, tables and properties built from Swift values.
///
/// rabbitmq-c takes `amqp_bytes_t` and `amqp_table_t` by pointer and only reads them during the call, so the I/O
/// thread builds them here, makes the call, then `reset()`s. One arena is reused for the connection's lifetime,
/// so the per-message path allocates only what the message itself needs.
///
/// I/O thread only: reachable only through `ConnectionCore.io`, which checks the thread, and not `Sendable`.
final class CArena {
    /// The chunk small allocations are carved from (kept across resets), how big it is and how much is handed out.
    private var chunk: UnsafeMutableRawPointer?
    private var chunkSize = 0
    private var used = 0
    /// Blocks to free at the next reset: large allocations and chunks that filled up.
    private var blocks: [UnsafeMutableRawPointer] = []

    /// Small allocations are carved from chunks of this size: a task message's properties take some 40 strings,
    /// and one `malloc`/`free` for each cost about 14,000 instructions a publish (client callgrind profile).
    static let chunkBytes = 16 * 1024
    /// Allocations larger than this get a block of their own (a message body, a large header).
    static let largestCarved = 2 * 1024

    deinit {
        reset()
        free(chunk)
    }

    /// Frees everything handed out since the last reset (the current chunk is kept, empty).
    func reset() {
        for block in blocks { free(block) }
        blocks.removeAll(keepingCapacity: true)
        used = 0
    }

    /// `byteCount` bytes, 16-byte aligned (as `malloc`'s), valid until the next `reset()`.
    private func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let start = (used + 15) & ~15
        if let chunk, start + byteCount <= chunkSize {
            used = start + byteCount
            return chunk + start
        }
        guard byteCount <= Self.largestCarved else {
            let block = malloc(max(byteCount, 1))!
            blocks.append(block)
            return block
        }
        if let chunk { blocks.append(chunk) }
        let fresh = malloc(Self.chunkBytes)!
        (chunk, chunkSize, used) = (fresh, Self.chunkBytes, byteCount)
        return fresh
    }

    /// A NUL-terminated copy of `string`, for rabbitmq-c's `const char *` parameters.
    func cString(_ string: String) -> UnsafePointer<CChar> {
        var utf8 = Array(string.utf8CString)
        let block = allocate(utf8.count)
        utf8.withUnsafeMutableBytes { block.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return UnsafePointer(block.assumingMemoryBound(to: CChar.self))
    }

    /// The UTF-8 bytes of `string` (not NUL-terminated), as `amqp_bytes_t`.
    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    /// A copy of `buffer` as `amqp_bytes_t`.
    func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        guard buffer.count > 0 else { return amqp_bytes_t(len: 0, bytes: nil) }
        let block = allocate(buffer.count)
        block.copyMemory(from: buffer.baseAddress!, byteCount: buffer.count)
        return amqp_bytes_t(len: buffer.count, bytes: block)
    }

    /// `table` as rabbitmq-c's `amqp_table_t`; an empty table has no entries pointer.
    func table(_ table: FieldTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_empty_table }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * table.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        for (index, entry) in table.entries.enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(entry.key), value: fieldValue(entry.value))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    /// `value` as rabbitmq-c's tagged union.
    func fieldValue(_ value: FieldValue) -> amqp_field_value_t {
        var out = amqp_field_value_t()
        switch value {
        case .bool(let v): out.kind = kind(AMQP_FIELD_KIND_BOOLEAN); out.value.boolean = v ? 1 : 0
        case .int8(let v): out.kind = kind(AMQP_FIELD_KIND_I8); out.value.i8 = v
        case .uint8(let v): out.kind = kind(AMQP_FIELD_KIND_U8); out.value.u8 = v
        case .int16(let v): out.kind = kind(AMQP_FIELD_KIND_I16); out.value.i16 = v
        case .uint16(let v): out.kind = kind(AMQP_FIELD_KIND_U16); out.value.u16 = v
        case .int32(let v): out.kind = kind(AMQP_FIELD_KIND_I32); out.value.i32 = v
        case .uint32(let v): out.kind = kind(AMQP_FIELD_KIND_U32); out.value.u32 = v
        case .int64(let v): out.kind = kind(AMQP_FIELD_KIND_I64); out.value.i64 = v
        case .uint64(let v): out.kind = kind(AMQP_FIELD_KIND_U64); out.value.u64 = v
        case .float(let v): out.kind = kind(AMQP_FIELD_KIND_F32); out.value.f32 = v
        case .double(let v): out.kind = kind(AMQP_FIELD_KIND_F64); out.value.f64 = v
        case .decimal(let d):
            out.kind = kind(AMQP_FIELD_KIND_DECIMAL)
            out.value.decimal = amqp_decimal_t(decimals: d.scale, value: d.value)
        case .string(let s): out.kind = kind(AMQP_FIELD_KIND_UTF8); out.value.bytes = bytes(s)
        case .bytes(let b):
            out.kind = kind(AMQP_FIELD_KIND_BYTES)
            out.value.bytes = b.withUnsafeBytes { bytes($0) }
        case .timestamp(let date):
            out.kind = kind(AMQP_FIELD_KIND_TIMESTAMP)
            out.value.u64 = UInt64(max(0, date.timeIntervalSince1970.rounded(.down)))
        case .table(let t): out.kind = kind(AMQP_FIELD_KIND_TABLE); out.value.table = table(t)
        case .array(let elements):
            out.kind = kind(AMQP_FIELD_KIND_ARRAY)
            if elements.isEmpty {
                out.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let values = allocate(MemoryLayout<amqp_field_value_t>.stride * elements.count)
                    .bindMemory(to: amqp_field_value_t.self, capacity: elements.count)
                for (index, element) in elements.enumerated() { values[index] = fieldValue(element) }
                out.value.array = amqp_array_t(num_entries: Int32(elements.count), entries: values)
            }
        case .void: out.kind = kind(AMQP_FIELD_KIND_VOID)
        }
        return out
    }

    /// `properties` as `amqp_basic_properties_t`, with `_flags` saying which fields are present.
    func properties(_ p: BasicProperties) -> amqp_basic_properties_t {
        var out = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let v = p.contentType { out.content_type = bytes(v); flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG) }
        if let v = p.contentEncoding {
            out.content_encoding = bytes(v); flags |= UInt32(AMQP_BASIC_CONTENT_ENCODING_FLAG)
        }
        if let v = p.headers { out.headers = table(v); flags |= UInt32(AMQP_BASIC_HEADERS_FLAG) }
        if let v = p.deliveryMode { out.delivery_mode = v; flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG) }
        if let v = p.priority { out.priority = v; flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG) }
        if let v = p.correlationId { out.correlation_id = bytes(v); flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG) }
        if let v = p.replyTo { out.reply_to = bytes(v); flags |= UInt32(AMQP_BASIC_REPLY_TO_FLAG) }
        if let v = p.expiration { out.expiration = bytes(v); flags |= UInt32(AMQP_BASIC_EXPIRATION_FLAG) }
        if let v = p.messageId { out.message_id = bytes(v); flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG) }
        if let v = p.timestamp {
            out.timestamp = UInt64(max(0, v.timeIntervalSince1970.rounded(.down)))
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if let v = p.type { out.type = bytes(v); flags |= UInt32(AMQP_BASIC_TYPE_FLAG) }
        if let v = p.userId { out.user_id = bytes(v); flags |= UInt32(AMQP_BASIC_USER_ID_FLAG) }
        if let v = p.appId { out.app_id = bytes(v); flags |= UInt32(AMQP_BASIC_APP_ID_FLAG) }
        if let v = p.clusterId { out.cluster_id = bytes(v); flags |= UInt32(AMQP_BASIC_CLUSTER_ID_FLAG) }
        out._flags = flags
        return out
    }

    private func kind(_ k: amqp_field_value_kind_t) -> UInt8 { UInt8(k.rawValue) }
}

/// Reading rabbitmq-c's structures back into Swift values (copies: the C memory is released right after).
enum CDecode {
    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let base = bytes.bytes else { return "" }
        let buffer = UnsafeRawBufferPointer(start: base, count: bytes.len)
        return String(decoding: buffer, as: UTF8.self)
    }

    static func byteArray(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let base = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }

    /// Tables and arrays nested deeper than this are cut (replaced by void) when read: nothing legitimate nests
    /// that deep (Celery's headers nest 3 levels), while a hostile header nested 20,000 levels would otherwise cost
    /// a deep recursion in every later copy, comparison and encoding of it.
    static let maxNesting = 64

    /// What reading a message's content found wrong without refusing it; nil when nothing.
    struct Problems {
        var headersCut = false
        var description: String? {
            headersCut ? "headers nested deeper than \(CDecode.maxNesting) levels; the deeper levels were cut" : nil
        }
    }

    static func table(_ table: amqp_table_t) -> FieldTable {
        var problems = Problems()
        return self.table(table, depth: 0, problems: &problems)
    }

    static func table(_ table: amqp_table_t, depth: Int, problems: inout Problems) -> FieldTable {
        guard table.num_entries > 0, let entries = table.entries else { return FieldTable() }
        var out: [(key: String, value: FieldValue)] = []
        out.reserveCapacity(Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            out.append(
                (key: string(entries[index].key), value: fieldValue(entries[index].value, depth: depth, problems: &problems)))
        }
        return FieldTable(out)
    }

    static func fieldValue(_ v: amqp_field_value_t, depth: Int, problems: inout Problems) -> FieldValue {
        switch UInt32(v.kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(v.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: return .int8(v.value.i8)
        case AMQP_FIELD_KIND_U8.rawValue: return .uint8(v.value.u8)
        case AMQP_FIELD_KIND_I16.rawValue: return .int16(v.value.i16)
        case AMQP_FIELD_KIND_U16.rawValue: return .uint16(v.value.u16)
        case AMQP_FIELD_KIND_I32.rawValue: return .int32(v.value.i32)
        case AMQP_FIELD_KIND_U32.rawValue: return .uint32(v.value.u32)
        case AMQP_FIELD_KIND_I64.rawValue: return .int64(v.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: return .uint64(v.value.u64)
        case AMQP_FIELD_KIND_F32.rawValue: return .float(v.value.f32)
        case AMQP_FIELD_KIND_F64.rawValue: return .double(v.value.f64)
        case AMQP_FIELD_KIND_DECIMAL.rawValue:
            return .decimal(.init(scale: v.value.decimal.decimals, value: v.value.decimal.value))
        case AMQP_FIELD_KIND_UTF8.rawValue: return .string(string(v.value.bytes))
        case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(byteArray(v.value.bytes))
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue:
            return .timestamp(Date(timeIntervalSince1970: TimeInterval(v.value.u64)))
        case AMQP_FIELD_KIND_TABLE.rawValue:
            guard depth < maxNesting else {
                problems.headersCut = true
                return .void
            }
            return .table(table(v.value.table, depth: depth + 1, problems: &problems))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            guard depth < maxNesting else {
                problems.headersCut = true
                return .void
            }
            let array = v.value.array
            guard array.num_entries > 0, let entries = array.entries else { return .array([]) }
            var values: [FieldValue] = []
            values.reserveCapacity(Int(array.num_entries))
            for index in 0..<Int(array.num_entries) {
                values.append(fieldValue(entries[index], depth: depth + 1, problems: &problems))
            }
            return .array(values)
        default: return .void
        }
    }

    static func properties(_ p: amqp_basic_properties_t) -> BasicProperties {
        var problems = Problems()
        return properties(p, problems: &problems)
    }

    static func properties(_ p: amqp_basic_properties_t, problems: inout Problems) -> BasicProperties {
        let flags = p._flags
        func has(_ flag: Int32) -> Bool { flags & UInt32(flag) != 0 }
        var out = BasicProperties()
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { out.contentType = string(p.content_type) }
        if has(AMQP_BASIC_CONTENT_ENCODING_FLAG) { out.contentEncoding = string(p.content_encoding) }
        if has(AMQP_BASIC_HEADERS_FLAG) { out.headers = table(p.headers, depth: 0, problems: &problems) }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) { out.deliveryMode = p.delivery_mode }
        if has(AMQP_BASIC_PRIORITY_FLAG) { out.priority = p.priority }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { out.correlationId = string(p.correlation_id) }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { out.replyTo = string(p.reply_to) }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { out.expiration = string(p.expiration) }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { out.messageId = string(p.message_id) }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { out.timestamp = Date(timeIntervalSince1970: TimeInterval(p.timestamp)) }
        if has(AMQP_BASIC_TYPE_FLAG) { out.type = string(p.type) }
        if has(AMQP_BASIC_USER_ID_FLAG) { out.userId = string(p.user_id) }
        if has(AMQP_BASIC_APP_ID_FLAG) { out.appId = string(p.app_id) }
        if has(AMQP_BASIC_CLUSTER_ID_FLAG) { out.clusterId = string(p.cluster_id) }
        return out
    }
}
