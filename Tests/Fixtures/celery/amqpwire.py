"""Reads the basic properties of a message from the raw bytes of its AMQP 0-9-1 content header, keeping the wire
type of every header value (py-amqp decodes tables to Python values, which loses int32 against int64 and so on).

`record_raw_properties()` makes py-amqp keep those bytes on each message it receives (`message.raw_properties`);
`read_properties(raw)` decodes them into (properties, header types)."""
import decimal
import struct

from amqp.serialization import GenericContent

# The field-table type letters RabbitMQ uses (AMQP 0-9-1 with RabbitMQ's errata), named after the cases of
# Sources/AMQP/Values/FieldValue.swift; "longstr" is its .string.
TYPE_NAMES = {
    "t": "bool", "b": "int8", "B": "uint8", "s": "int16", "u": "uint16", "I": "int32", "i": "uint32",
    "l": "int64", "L": "uint64", "f": "float", "d": "double", "D": "decimal", "S": "longstr", "x": "bytes",
    "T": "timestamp", "V": "void",
}
FIXED = {
    "t": ">B", "b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q", "L": ">Q",
    "f": ">f", "d": ">d", "T": ">Q",
}

# Basic class properties in flag order (AMQP 0-9-1, 4.2.6.1), with their domain.
PROPERTIES = [
    (0x8000, "content_type", "shortstr"), (0x4000, "content_encoding", "shortstr"), (0x2000, "headers", "table"),
    (0x1000, "delivery_mode", "octet"), (0x0800, "priority", "octet"), (0x0400, "correlation_id", "shortstr"),
    (0x0200, "reply_to", "shortstr"), (0x0100, "expiration", "shortstr"), (0x0080, "message_id", "shortstr"),
    (0x0040, "timestamp", "longlong"), (0x0020, "type", "shortstr"), (0x0010, "user_id", "shortstr"),
    (0x0008, "app_id", "shortstr"), (0x0004, "cluster_id", "shortstr"),
]


class WireError(Exception):
    """The content header is not what AMQP 0-9-1 says it is."""


class Reader:
    """Reads AMQP 0-9-1 domains from a byte string, front to back."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.offset = 0

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise WireError(f"the content header ends at byte {len(self.data)}; {count} more were expected at {self.offset}")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def shortstr(self) -> str:
        return self.take(self.unpack(">B")).decode("utf-8")

    def longstr(self) -> bytes:
        return self.take(self.unpack(">I"))

    def table(self):
        """A field table as (values, types): types maps each key to its type name (nested for tables and arrays)."""
        inner = Reader(self.longstr())
        values, types = {}, {}
        while inner.offset < len(inner.data):
            key = inner.shortstr()
            values[key], types[key] = inner.item()
        return values, types

    def array(self):
        inner = Reader(self.longstr())
        values, types = [], ["array"]
        while inner.offset < len(inner.data):
            value, kind = inner.item()
            values.append(value)
            types.append(kind)
        return values, types

    def item(self):
        """One field value as (JSON-friendly value, type)."""
        letter = chr(self.unpack(">B"))
        if letter == "F":
            values, types = self.table()
            return values, {"table": types}
        if letter == "A":
            return self.array()
        if letter not in TYPE_NAMES:
            raise WireError(f"unknown field type {letter!r} at byte {self.offset - 1}")
        name = TYPE_NAMES[letter]
        if letter == "V":
            return None, name
        if letter == "S":
            return self.longstr().decode("utf-8"), name
        if letter == "x":
            return self.longstr().decode("latin-1"), name
        if letter == "D":
            scale = self.unpack(">B")
            return str(decimal.Decimal(self.unpack(">i")).scaleb(-scale)), name
        value = self.unpack(FIXED[letter])
        return (bool(value) if letter == "t" else value), name


def read_properties(raw: bytes):
    """The basic properties in the property flags and list of a content header (after class, weight and body size),
    as (properties with `headers` for the application headers, the wire type of each header)."""
    reader = Reader(raw)
    flags = reader.unpack(">H")
    if flags & 1:
        raise WireError("a second property-flags word: basic has only 14 properties")
    properties, types = {}, {}
    for bit, name, domain in PROPERTIES:
        if not flags & bit:
            continue
        if domain == "shortstr":
            properties[name] = reader.shortstr()
        elif domain == "octet":
            properties[name] = reader.unpack(">B")
        elif domain == "longlong":
            properties[name] = reader.unpack(">Q")
        else:
            properties[name], types = reader.table()
    if reader.offset != len(reader.data):
        raise WireError(f"{len(reader.data) - reader.offset} bytes left over after the property list")
    return properties, types


def record_raw_properties():
    """Makes py-amqp keep the raw property bytes of each content header it reads on the message, as
    `message.raw_properties`."""
    if getattr(GenericContent.inbound_header, "keeps_raw_properties", False):
        return
    decode = GenericContent.inbound_header

    def inbound_header(self, buf, offset=0):
        # The frame payload: class id (2), weight (2), body size (8), then the property flags and list.
        self.raw_properties = bytes(buf[offset + 12:])
        return decode(self, buf, offset)

    inbound_header.keeps_raw_properties = True
    GenericContent.inbound_header = inbound_header
