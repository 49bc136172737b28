import AMQP

/// The headers of a task message that `TaskMessage` has fields for, taken from the table in one pass; the others
/// are its `extraHeaders`, in their order.
///
/// One pass with a switch on each name's length replaces some twenty lookups, each a scan of the whole table, and a
/// `Set` of the modelled names hashed for every header (about 8,000 instructions a task; README, "Instructions per
/// task"). A name that appears twice is read from its first entry, as `FieldTable`'s subscript reads it.
struct TaskHeaders {
    var task: FieldValue?
    var id: FieldValue?
    var shadow: FieldValue?
    var eta: FieldValue?
    var expires: FieldValue?
    var group: FieldValue?
    var groupIndex: FieldValue?
    var retries: FieldValue?
    var timeLimit: FieldValue?
    var rootId: FieldValue?
    var parentId: FieldValue?
    var argsRepr: FieldValue?
    var kwargsRepr: FieldValue?
    var origin: FieldValue?
    var ignoreResult: FieldValue?
    /// Not modelled (it is kept among the extra headers), but read: a compressed body is refused.
    var compression: FieldValue?
    /// The headers without a field (`lang`, which names the sender's language, is dropped as well).
    var extra: [(key: String, value: FieldValue)] = []

    init(_ table: FieldTable) {
        for entry in table.entries {
            if !take(entry.key, entry.value) {
                if entry.key == "compression", compression == nil { compression = entry.value }
                extra.append(entry)
            }
        }
    }

    /// Stores `value` in the field named `name` (unless an earlier entry did); false when no field has that name.
    private mutating func take(_ name: String, _ value: FieldValue) -> Bool {
        func first(_ field: inout FieldValue?) -> Bool {
            if field == nil { field = value }
            return true
        }
        switch name.utf8.count {
        case 2 where name == "id": return first(&id)
        case 3 where name == "eta": return first(&eta)
        case 4 where name == "task": return first(&task)
        case 4 where name == "lang": return true
        case 5 where name == "group": return first(&group)
        case 6 where name == "shadow": return first(&shadow)
        case 6 where name == "origin": return first(&origin)
        case 7 where name == "expires": return first(&expires)
        case 7 where name == "retries": return first(&retries)
        case 7 where name == "root_id": return first(&rootId)
        case 8 where name == "argsrepr": return first(&argsRepr)
        case 9 where name == "timelimit": return first(&timeLimit)
        case 9 where name == "parent_id": return first(&parentId)
        case 10 where name == "kwargsrepr": return first(&kwargsRepr)
        case 11 where name == "group_index": return first(&groupIndex)
        case 13 where name == "ignore_result": return first(&ignoreResult)
        default: return false
        }
    }
}
