//! The contract between the native addon (`opensynaptic-napi`) and the JavaScript packages:
//! buffer layouts (word and field indexes), statuses, fallback codes and error codes. This crate
//! is the one place they are written; the addon uses the constants, and `src/main.rs` writes the
//! TypeScript copy the packages use (`packages/internal/src/native-contract.ts`, committed, with a
//! header saying so). A test here and the binding's `package-check` fail when the committed copy
//! is not what the generator writes now.

#![forbid(unsafe_code)]

/// One named value of a table, with its documentation.
#[derive(Debug, Clone, Copy)]
pub struct Entry<T: 'static> {
    pub name: &'static str,
    pub value: T,
    pub doc: &'static [&'static str],
}

/// A table as the generator sees it: its TypeScript name, documentation and entries.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub ts_name: &'static str,
    pub doc: &'static [&'static str],
    pub entries: Entries,
}

/// The entries of a table, numbers or strings.
#[derive(Debug, Clone, Copy)]
pub enum Entries {
    Numbers(&'static [Entry<u32>]),
    Wide(&'static [Entry<u64>]),
    Strings(&'static [Entry<&'static str>]),
}

/// Every table, in the order the generated module lists them.
pub const TABLES: &[Table] = &[
    wire::TABLE,
    wire_text::TABLE,
    frame_status::TABLE,
    decode_field::TABLE,
    fusion_io::TABLE,
    sender_load::TABLE,
    send_batch::TABLE,
    fallback::TABLE,
    udp_batch::TABLE,
    udp_family::TABLE,
    native_error::TABLE,
];

/// Declares a module of constants and its [`Table`] from one list, so the two cannot differ.
macro_rules! table {
    (
        $(#[doc = $doc:literal])*
        pub mod $module:ident as $ts:literal: $ty:ty => $kind:ident {
            $( $(#[doc = $d:literal])* $name:ident = $value:expr, )*
        }
    ) => {
        $(#[doc = $doc])*
        pub mod $module {
            $( $(#[doc = $d])* pub const $name: $ty = $value; )*
            /// This module as a [`Table`](crate::Table) for the generator.
            pub const TABLE: crate::Table = crate::Table {
                ts_name: $ts,
                doc: &[$($doc),*],
                entries: crate::Entries::$kind(&[ $( crate::Entry { name: stringify!($name), value: $name, doc: &[$($d),*] } ),* ]),
            };
        }
    };
}

table! {
    /// Numbers of the wire format that the Rust crates and the packages both use: the data
    /// command bytes, the frame layout's limits, the fusion body's marks and limits.
    pub mod wire as "Wire": u64 => Wide {
        /// FULL data frame: the whole body text.
        DATA_FULL = 63,
        /// FULL, body XORed with the session key.
        DATA_FULL_SEC = 64,
        /// DIFF data frame: the changed values of a known template.
        DATA_DIFF = 170,
        /// DIFF, secure.
        DATA_DIFF_SEC = 171,
        /// HEART data frame: nothing changed.
        DATA_HEART = 127,
        /// HEART, secure.
        DATA_HEART_SEC = 128,
        /// Bytes of a frame besides its routes and body: cmd, route count, tid, six timestamp bytes, crc8 and crc16.
        FRAME_OVERHEAD = 12,
        /// A frame shorter than this cannot even be classified ("Packet too short").
        MIN_FRAME_LENGTH = 5,
        /// Most routes one frame carries (the count is one byte).
        MAX_ROUTES = 255,
        /// Largest timestamp the 48-bit field holds.
        MAX_TIMESTAMP = (1 << 48) - 1,
        /// Longest value a DIFF body carries (its length is one byte); a longer one makes a FULL frame.
        MAX_DIFF_VALUE_LENGTH = 255,
        /// Characters of the body's timestamp token (base64url of the 48-bit value).
        TIMESTAMP_TOKEN_LENGTH = 8,
        /// The byte that stands for a value inside a template signature.
        VALUE_MARK = 0x01,
    }
}

table! {
    /// Texts of the wire format shared the same way.
    pub mod wire_text as "WireText": &'static str => Strings {
        /// What stands for the timestamp token inside a template signature.
        TS_MARK = "{TS}",
    }
}

table! {
    /// Status of one frame in the `decodeFrame` / `decodeFrames` output (field `STATUS`): 0, or
    /// the first check the frame failed. The same numbers for the TypeScript `decodeFrames`.
    pub mod frame_status as "FrameStatus": u32 => Numbers {
        /// Every check passed.
        OK = 0,
        /// Shorter than 5 bytes ("Packet too short").
        TOO_SHORT = 1,
        /// Shorter than its header and CRCs need for its route count.
        INCOMPLETE_HEADER = 2,
        /// The CRC-16 over the frame does not match (field `COMPUTED_CRC`: the CRC computed).
        CRC16_MISMATCH = 3,
        /// A secure frame with no key for its source.
        MISSING_KEY = 4,
        /// The CRC-8 of the plain body does not match (field `COMPUTED_CRC`: the CRC computed).
        CRC8_MISMATCH = 5,
        /// A command byte that is not a data command.
        UNKNOWN_CMD = 6,
        /// Secure frame whose CRC-16 passed; decrypt it with its key and check CRC-8 (`decodeFrame`).
        SECURE_UNCHECKED = 7,
    }
}

table! {
    /// Index of each number `decodeFrame` / `decodeFrames` write per frame (`COUNT` numbers per
    /// frame, frame i at `i * COUNT`). Fields a failed frame did not reach are 0.
    pub mod decode_field as "DecodeField": u32 => Numbers {
        /// A `FrameStatus`.
        STATUS = 0,
        /// Command byte.
        CMD = 1,
        /// Number of routes.
        ROUTE_COUNT = 2,
        /// The last route: the source device.
        SOURCE_AID = 3,
        /// Template id.
        TID = 4,
        /// 48-bit timestamp.
        TIMESTAMP = 5,
        /// Offset of the body within the frame.
        BODY_OFFSET = 6,
        /// Length of the body.
        BODY_LENGTH = 7,
        /// CRC-8 as carried.
        CRC8 = 8,
        /// CRC-16 as carried.
        CRC16 = 9,
        /// The CRC computed, for `CRC16_MISMATCH` and `CRC8_MISMATCH`.
        COMPUTED_CRC = 10,
        /// Numbers per frame.
        COUNT = 11,
    }
}

table! {
    /// The fusion sender's `io` buffer: native-endian `u32` control words at its start, the data
    /// after them.
    pub mod fusion_io as "FusionIo": u32 => Numbers {
        /// Bytes of control words at the start of `io`; the key (or the template bytes) follows.
        CTRL_BYTES = 128,
        /// "No value" in a control word.
        NONE = u32::MAX,
        /// Bytes of one list entry (`index, start, end`, three words): a value and where its text sits.
        ENTRY_BYTES = 12,
    }
}

table! {
    /// Control words of `fusionSenderLoad`: the template the sender checks bodies against. One
    /// length word per value follows from `VALUE_LENGTHS` on; the bytes (signature, then the
    /// values) follow the words.
    pub mod sender_load as "SenderLoad": u32 => Numbers {
        /// In: the sender id.
        ID = 0,
        /// In: the template id, or `NONE` to unload.
        TID = 1,
        /// In: bytes of the signature.
        SIG_LENGTH = 2,
        /// In: number of values, or `NONE` for a template without values.
        VALUE_COUNT = 3,
        /// In: the first value's length word.
        VALUE_LENGTHS = 4,
    }
}

table! {
    /// Control words of `fusionSendBatch`: a run of bodies through one sender, the key at
    /// `CTRL_BYTES`, the touched list after it (word aligned).
    pub mod send_batch as "SendBatch": u32 => Numbers {
        /// In: the sender id.
        ID = 0,
        /// In: the route (this node's id).
        AID = 1,
        /// In: bytes of key at `CTRL_BYTES` (0: plain frames).
        KEY_LENGTH = 2,
        /// In: the first body to send.
        START = 3,
        /// In: where in `out` the first frame goes.
        OUT_POSITION = 4,
        /// Out: the first body not sent (the one that fell back, or the count).
        NEXT = 5,
        /// Out: end of the frames in `out`.
        OUT_END = 6,
        /// Out: why body `NEXT` fell back (a `Fallback` code; 0: all sent).
        FALLBACK = 7,
        /// Out: frames written.
        FRAMES = 8,
        /// Out: values the run changed.
        TOUCHED_COUNT = 9,
        /// Out: byte offset in `io` of their list (`index, start, end` per value, where its final text sits in `bodies`).
        TOUCHED_OFFSET = 10,
    }
}

table! {
    /// Why the native sender left a body to the TypeScript path (nothing changed).
    pub mod fallback as "Fallback": u32 => Numbers {
        /// Sent: no fallback.
        NONE = 0,
        /// The text is not UTF-8.
        NOT_UTF8 = 1,
        /// The text does not decompose.
        DECOMPOSE = 2,
        /// The timestamp token is not 8+ base64url characters.
        TOKEN = 3,
        /// No template is loaded, or its values are unknown.
        NO_TEMPLATE = 4,
        /// The body's signature is not the loaded template's.
        OTHER_SIGNATURE = 5,
        /// Same signature, another number of values: FULL.
        VALUE_COUNT = 6,
        /// A changed value is longer than 255 bytes: FULL.
        VALUE_TOO_LONG = 7,
    }
}

table! {
    /// The native UDP socket's batches (`NativeUdp`): each datagram a receive batch holds, and
    /// each one a send batch carries, is `COUNT` native-endian `u32` words in the batch's `meta`
    /// array (datagram i at `i * COUNT`); its bytes are `data[OFFSET..OFFSET + LENGTH)`.
    pub mod udp_batch as "UdpBatch": u32 => Numbers {
        /// Where the datagram's bytes start in `data`.
        OFFSET = 0,
        /// Bytes of the datagram (received: over the receive limit when it was cut, see `TRUNCATED`).
        LENGTH = 1,
        /// The peer's port (received: the source; sent: the destination).
        PORT = 2,
        /// The peer's address family, a `UdpFamily`.
        FAMILY = 3,
        /// The peer's address: IPv4 in word `ADDRESS` (first octet in the high byte), IPv6 in four
        /// words from `ADDRESS` (each word four octets, the first in its high byte).
        ADDRESS = 4,
        /// Flags of a received datagram: `TRUNCATED` when it was larger than the receive limit.
        FLAGS = 8,
        /// Words per datagram.
        COUNT = 9,
        /// Flag: the datagram was larger than the receive slot and was cut (dropped as oversize).
        TRUNCATED = 1,
        /// Most messages one `recvmmsg` reads (`recvBatch`) and most records one `sendBatch`
        /// call takes. A receive batch holds more records where the kernel coalesced runs of
        /// datagrams from one sender (UDP GRO): each run comes back as its datagrams.
        MAX_BATCH = 1024,
        /// Most records the receive thread gathers into one batch while JS is busy with the
        /// earlier ones (`maxBatchFrames`; beside a 4 MiB bound on their bytes).
        MAX_GATHER = 65536,
    }
}

table! {
    /// Address families of `UdpBatch.FAMILY` and of the socket.
    pub mod udp_family as "UdpFamily": u32 => Numbers {
        /// IPv4.
        IPV4 = 4,
        /// IPv6 (an IPv4 peer of a dual-stack socket is its mapped `::ffff:a.b.c.d` address).
        IPV6 = 6,
    }
}

table! {
    /// The `code` of every error the addon throws (its message is for people). The JavaScript
    /// side builds its typed errors from the code and its own inputs, never from the message.
    pub mod native_error as "NativeErrorCode": &'static str => Strings {
        /// The call broke the addon's contract (an argument of the wrong size or range): a defect of the caller.
        CONTRACT = "OSN_CONTRACT",
        /// No offsets at all, where n + 1 boundaries are needed.
        OFFSETS_EMPTY = "OSN_OFFSETS_EMPTY",
        /// A boundary of the offsets decreases or lies past the data.
        OFFSETS = "OSN_OFFSETS",
        /// The output array is too small for the results.
        OUT_TOO_SMALL = "OSN_OUT_TOO_SMALL",
        /// A frame's timestamp does not fit the 48-bit field.
        FRAME_TIMESTAMP = "OSN_FRAME_TIMESTAMP",
        /// More routes than one frame carries.
        FRAME_ROUTES = "OSN_FRAME_ROUTES",
        /// The frame's output buffer is too small.
        FRAME_BUFFER = "OSN_FRAME_BUFFER",
        /// No fusion sender with that id.
        NO_SENDER = "OSN_NO_SENDER",
        /// A socket call failed; the message starts with the platform's error name and a colon
        /// (`EADDRINUSE: bind 127.0.0.1:8080`), which the JavaScript side reads as the `errno`.
        IO = "OSN_IO",
        /// The native socket is not built for this platform (no `recvmmsg`/`sendmmsg`).
        UNSUPPORTED = "OSN_UNSUPPORTED",
        /// The native socket was closed.
        CLOSED = "OSN_CLOSED",
    }
}

/// The TypeScript module for [`TABLES`]: what `src/main.rs` writes.
pub fn typescript() -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    for t in TABLES {
        out.push('\n');
        doc_comment(&mut out, "", t.doc);
        out.push_str(&format!("export const {} = Object.freeze({{\n", t.ts_name));
        match t.entries {
            Entries::Numbers(entries) => {
                for e in entries {
                    doc_comment(&mut out, "  ", e.doc);
                    out.push_str(&format!("  {}: {},\n", e.name, e.value));
                }
            }
            Entries::Wide(entries) => {
                for e in entries {
                    assert!(e.value < 1 << 53, "{} is not exact as a JS number", e.name);
                    doc_comment(&mut out, "  ", e.doc);
                    out.push_str(&format!("  {}: {},\n", e.name, e.value));
                }
            }
            Entries::Strings(entries) => {
                for e in entries {
                    doc_comment(&mut out, "  ", e.doc);
                    assert!(
                        e.value
                            .chars()
                            .all(|c| (' '..='~').contains(&c) && c != '\'' && c != '\\'),
                        "{}: plain ASCII only",
                        e.name
                    );
                    out.push_str(&format!("  {}: '{}',\n", e.name, e.value));
                }
            }
        }
        out.push_str("} as const);\n");
    }
    out
}

/// The generated module's first lines.
pub const HEADER: &str = "\
// Generated by crates/opensynaptic-contract (`pnpm --filter @opensynaptic/binding generate`) from
// its Rust tables: do not edit. What the native addon and the packages share.
";

fn doc_comment(out: &mut String, indent: &str, lines: &[&str]) {
    if lines.is_empty() {
        return;
    }
    let text: Vec<&str> = lines
        .iter()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    if text.len() == 1 {
        out.push_str(&format!("{indent}/** {} */\n", text[0]));
        return;
    }
    out.push_str(&format!("{indent}/**\n"));
    for l in text {
        out.push_str(&format!("{indent} * {l}\n").replace(" * \n", " *\n"));
    }
    out.push_str(&format!("{indent} */\n"));
}

/// Where the generated module is committed, from the repository root.
pub const TS_PATH: &str = "packages/internal/src/native-contract.ts";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn committed_typescript_is_what_the_generator_writes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(TS_PATH);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == typescript(),
            "{TS_PATH} is not what crates/opensynaptic-contract generates now: run `pnpm --filter @opensynaptic/binding generate` and commit it"
        );
    }

    #[test]
    fn names_are_unique_per_table() {
        for t in TABLES {
            let names: Vec<&str> = match t.entries {
                Entries::Numbers(e) => e.iter().map(|e| e.name).collect(),
                Entries::Wide(e) => e.iter().map(|e| e.name).collect(),
                Entries::Strings(e) => e.iter().map(|e| e.name).collect(),
            };
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "{}", t.ts_name);
        }
    }
}
