//! Node.js bindings for `opensynaptic-core`.
//!
//! Output typed arrays (`out`, `plainOut`) are written in place. napi exposes
//! that only through `unsafe` accessors; each use is confined to one
//! synchronous call, during which JS cannot run, and overlapping inputs and
//! outputs are rejected before any `&mut` borrow is created.
//!
//! Small results (one frame, one payload, one key) are copied into a fresh JS
//! buffer, which costs far less than an external buffer and its finalizer;
//! batch results are handed over without a copy.
//!
//! Every error thrown to JavaScript carries, as its `code`, one of the codes of
//! `opensynaptic_contract::native_error` (`OSN_OFFSETS`, `OSN_FRAME_TIMESTAMP`,
//! `OSN_CONTRACT`...): the JS wrapper builds its typed error from that code and
//! its own inputs; the message is for people. Statuses, field indexes and
//! buffer layouts come from the same crate, which generates the TypeScript copy
//! the packages read. Typed-array arguments are borrowed, never copied.
//!
//! The JS wrapper is the public API: it normalises inputs (masks tids, clamps
//! session-key inputs, checks frame fields) before calling in here.

use napi::bindgen_prelude::{BigInt, Float64ArraySlice, Uint16Array, Uint8Array, Uint8ArraySlice};
use napi::Env;
use napi_derive::napi;
use opensynaptic_contract::{decode_field as field, frame_status, native_error};
use opensynaptic_core::frame::{self, FrameError, FrameErrorKind, FrameHeader, MAX_TIMESTAMP};
use opensynaptic_core::{crc, security};

pub mod fusion;
pub mod udp;

/// Number of `f64` slots per frame in the decode output arrays.
const DECODE_FIELDS: usize = field::COUNT as usize;

/// The `code` of a thrown error: one of `opensynaptic_contract::native_error`.
#[derive(Debug, Clone, Copy)]
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// An error thrown to JavaScript, with its contract code.
pub type Error = napi::Error<Code>;
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn fail(code: &'static str, message: impl std::fmt::Display) -> Error {
    napi::Error::new(Code(code), message.to_string())
}

/// The call broke the contract (an argument of the wrong size or range).
pub(crate) fn arg_error(message: impl std::fmt::Display) -> Error {
    fail(native_error::CONTRACT, message)
}

/// A failure of napi itself (allocating a result...), under the contract code.
pub(crate) fn napi_error(err: napi::Error) -> Error {
    fail(native_error::CONTRACT, err.reason)
}

pub(crate) fn frame_error(err: FrameError) -> Error {
    let code = match err.kind {
        FrameErrorKind::TimestampOutOfRange { .. } => native_error::FRAME_TIMESTAMP,
        FrameErrorKind::TooManyRoutes { .. } => native_error::FRAME_ROUTES,
        FrameErrorKind::BufferTooSmall { .. } => native_error::FRAME_BUFFER,
        // Decode failures are statuses, never thrown: reaching here is a defect.
        _ => native_error::CONTRACT,
    };
    fail(code, err)
}

/// A JS number that must be an integer in `0..=max`.
fn int_arg(name: &str, value: f64, max: u32) -> Result<u32> {
    if value.fract() == 0.0 && (0.0..=f64::from(max)).contains(&value) {
        Ok(value as u32)
    } else {
        Err(arg_error(format_args!(
            "{name} must be an integer in 0..={max}, got {value}"
        )))
    }
}

fn byte_arg(name: &str, value: f64) -> Result<u8> {
    int_arg(name, value, 255).map(|v| v as u8)
}

fn timestamp_arg(value: f64) -> Result<u64> {
    if value.is_nan() || (value.is_finite() && value.fract() != 0.0) {
        return Err(arg_error(format_args!(
            "timestamp must be an integer, got {value}"
        )));
    }
    if (0.0..=MAX_TIMESTAMP as f64).contains(&value) {
        Ok(value as u64)
    } else {
        Err(fail(
            native_error::FRAME_TIMESTAMP,
            format_args!(
                "timestamp {value} does not fit the 48-bit frame field (0..={MAX_TIMESTAMP})"
            ),
        ))
    }
}

/// Magnitude of a BigInt when it fits in 64 bits.
fn bigint_magnitude(value: &BigInt) -> Option<u64> {
    let (first, rest) = value.words.split_first()?;
    rest.iter().all(|&w| w == 0).then_some(*first)
}

fn bigint_to_u64(name: &str, value: &BigInt) -> Result<u64> {
    match bigint_magnitude(value) {
        Some(0) => Ok(0),
        Some(m) if !value.sign_bit => Ok(m),
        _ => Err(arg_error(format_args!(
            "{name} must be a BigInt in 0..=18446744073709551615"
        ))),
    }
}

/// Splits `data` at `offsets` (n + 1 boundaries for n items). The first
/// boundary that decreases or lies past the data fails with `OSN_OFFSETS`
/// (checked in order, as the TypeScript codecs do).
pub(crate) fn checked_ranges<'a>(
    data_len: usize,
    offsets: &'a [u32],
) -> Result<impl Iterator<Item = std::ops::Range<usize>> + 'a> {
    let mut prev = 0;
    for (j, &o) in offsets.iter().enumerate() {
        if o as usize > data_len || o < prev {
            return Err(fail(
                native_error::OFFSETS,
                format_args!("boundary {j} ({o}) is decreasing or past the {data_len}-byte data"),
            ));
        }
        prev = o;
    }
    Ok(offsets
        .windows(2)
        .map(|pair| pair[0] as usize..pair[1] as usize))
}

/// `checked_ranges` for a batch that needs at least one boundary.
fn batch_ranges<'a>(
    data_len: usize,
    offsets: &'a [u32],
) -> Result<impl Iterator<Item = std::ops::Range<usize>> + 'a> {
    if offsets.is_empty() {
        return Err(fail(
            native_error::OFFSETS_EMPTY,
            "expected n + 1 boundaries, got none",
        ));
    }
    checked_ranges(data_len, offsets)
}

/// CRC-8/SMBUS.
#[napi(js_name = "crc8", catch_unwind)]
pub fn crc8_js(data: &[u8]) -> u32 {
    crc::crc8(data).into()
}

/// CRC-16/CCITT-FALSE.
#[napi(js_name = "crc16", catch_unwind)]
pub fn crc16_js(data: &[u8]) -> u32 {
    crc::crc16(data).into()
}

/// CRC-8 of each `data[offsets[i]..offsets[i + 1]]`.
#[napi(js_name = "crc8Batch", catch_unwind)]
pub fn crc8_batch(data: &[u8], offsets: &[u32]) -> Result<Uint8Array> {
    let out: Vec<u8> = batch_ranges(data.len(), offsets)?
        .map(|r| crc::crc8(&data[r]))
        .collect();
    Ok(Uint8Array::new(out))
}

/// CRC-16 of each `data[offsets[i]..offsets[i + 1]]`.
#[napi(js_name = "crc16Batch", catch_unwind)]
pub fn crc16_batch(data: &[u8], offsets: &[u32]) -> Result<Uint16Array> {
    let out: Vec<u16> = batch_ranges(data.len(), offsets)?
        .map(|r| crc::crc16(&data[r]))
        .collect();
    Ok(Uint16Array::new(out))
}

/// Secure-body XOR (its own inverse): `out[i] = payload[i] ^ key[(i + off) % key.length] ^ off`
/// with `off = offset & 31`. An empty key returns an unchanged copy.
#[napi(js_name = "xorPayload", catch_unwind)]
pub fn xor_payload<'env>(
    env: &'env Env,
    payload: &[u8],
    key: &[u8],
    offset: f64,
) -> Result<Uint8ArraySlice<'env>> {
    let offset = int_arg("offset", offset, u32::MAX)?;
    Uint8ArraySlice::copy_from(env, security::xor_payload(payload, key, offset)).map_err(napi_error)
}

/// SHA-256 of the decimal text of `aid * ts mod 2^64`; both must be in 0..2^64.
#[napi(js_name = "deriveSessionKey", catch_unwind)]
pub fn derive_session_key<'env>(
    env: &'env Env,
    aid: BigInt,
    ts: BigInt,
) -> Result<Uint8ArraySlice<'env>> {
    let aid = bigint_to_u64("aid", &aid)?;
    let ts = bigint_to_u64("ts", &ts)?;
    Uint8ArraySlice::copy_from(env, security::derive_session_key(aid, ts)).map_err(napi_error)
}

/// Builds one data frame. A non-empty key XORs the body and turns a plain data
/// command into its secure variant.
#[napi(js_name = "encodeFrame", catch_unwind)]
pub fn encode_frame<'env>(
    env: &'env Env,
    cmd: f64,
    routes: &[u32],
    tid: f64,
    timestamp: f64,
    body: &[u8],
    key: Option<&[u8]>,
) -> Result<Uint8ArraySlice<'env>> {
    let cmd = byte_arg("cmd", cmd)?;
    let tid = byte_arg("tid", tid)?;
    let timestamp = timestamp_arg(timestamp)?;
    let bytes = frame::encode_frame(cmd, routes, tid, timestamp, body, key).map_err(frame_error)?;
    Uint8ArraySlice::copy_from(env, bytes).map_err(napi_error)
}

fn write_header(out: &mut [f64], status: u32, h: &FrameHeader) {
    out[field::STATUS as usize] = f64::from(status);
    out[field::CMD as usize] = f64::from(h.cmd);
    out[field::ROUTE_COUNT as usize] = f64::from(h.route_count);
    out[field::SOURCE_AID as usize] = f64::from(h.source_aid);
    out[field::TID as usize] = f64::from(h.tid);
    out[field::TIMESTAMP as usize] = h.timestamp as f64;
    out[field::BODY_OFFSET as usize] = h.body_offset as f64;
    out[field::BODY_LENGTH as usize] = h.body_len as f64;
    out[field::CRC8 as usize] = f64::from(h.crc8);
    out[field::CRC16 as usize] = f64::from(h.crc16);
    out[field::COMPUTED_CRC as usize] = 0.0;
}

/// Writes a decode error's status and the fields it carries; returns the status.
fn write_error(out: &mut [f64], err: &FrameError) -> Result<u32> {
    let (status, computed) = match err.kind {
        FrameErrorKind::TooShort { .. } => (frame_status::TOO_SHORT, 0.0),
        FrameErrorKind::IncompleteHeader { .. } => (frame_status::INCOMPLETE_HEADER, 0.0),
        FrameErrorKind::Crc16Mismatch { actual, .. } => {
            (frame_status::CRC16_MISMATCH, f64::from(actual))
        }
        FrameErrorKind::MissingSecureKey { .. } => (frame_status::MISSING_KEY, 0.0),
        FrameErrorKind::Crc8Mismatch { actual, .. } => {
            (frame_status::CRC8_MISMATCH, f64::from(actual))
        }
        FrameErrorKind::UnknownCommand { .. } => (frame_status::UNKNOWN_CMD, 0.0),
        // Not a property of the frame: the caller passed unusable buffers.
        _ => return Err(frame_error(*err)),
    };
    out[field::STATUS as usize] = f64::from(status);
    out[field::CMD as usize] = err.cmd.map_or(0.0, f64::from);
    out[field::ROUTE_COUNT as usize] = err.route_count.map_or(0.0, f64::from);
    out[field::SOURCE_AID as usize] = err.source_aid.map_or(0.0, f64::from);
    out[field::TID as usize] = err.tid.map_or(0.0, f64::from);
    out[field::TIMESTAMP as usize] = err.timestamp.map_or(0.0, |t| t as f64);
    out[field::BODY_OFFSET as usize] = err.body_offset.map_or(0.0, |v| v as f64);
    out[field::BODY_LENGTH as usize] = err.body_len.map_or(0.0, |v| v as f64);
    out[field::CRC8 as usize] = err.crc8.map_or(0.0, f64::from);
    out[field::CRC16 as usize] = err.crc16.map_or(0.0, f64::from);
    out[field::COMPUTED_CRC as usize] = computed;
    Ok(status)
}

fn check_out_len(out: &[f64], frames: usize) -> Result<()> {
    let needed = frames * DECODE_FIELDS;
    if out.len() < needed {
        return Err(fail(
            native_error::OUT_TOO_SMALL,
            format_args!(
                "out must hold {DECODE_FIELDS} numbers per frame: {needed} needed, {} given",
                out.len()
            ),
        ));
    }
    Ok(())
}

/// Whether two typed-array views share any bytes (they may be views of one
/// ArrayBuffer); writing through one while reading the other would alias.
fn overlaps<A, B>(a: &[A], b: &[B]) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let a_start = a.as_ptr() as usize;
    let a_end = a_start + std::mem::size_of_val(a);
    let b_start = b.as_ptr() as usize;
    let b_end = b_start + std::mem::size_of_val(b);
    a_start < b_end && b_start < a_end
}

fn check_disjoint<A, B>(
    input: &[A],
    input_name: &str,
    output: &[B],
    output_name: &str,
) -> Result<()> {
    if overlaps(input, output) {
        return Err(arg_error(format_args!(
            "{output_name} must not share memory with {input_name}"
        )));
    }
    Ok(())
}

/// Decodes one frame without allocating. Writes `decode_field::COUNT` numbers
/// into `out` (indexes: `opensynaptic_contract::decode_field`), the first a
/// `frame_status`; fields not reached are 0. A secure frame's plain body goes to `plainOut[0..bodyLength]`;
/// `plainOut` must not share memory with the other arguments. Returns the status.
#[napi(js_name = "decodeFrame", catch_unwind)]
pub fn decode_frame(
    frame: &[u8],
    key: Option<&[u8]>,
    mut out: Float64ArraySlice,
    mut plain_out: Uint8ArraySlice,
) -> Result<u32> {
    check_disjoint(frame, "frame", &out, "out")?;
    check_disjoint(frame, "frame", &plain_out, "plainOut")?;
    check_disjoint(&out, "out", &plain_out, "plainOut")?;
    if let Some(key) = key {
        check_disjoint(key, "key", &out, "out")?;
        check_disjoint(key, "key", &plain_out, "plainOut")?;
    }
    // SAFETY: the views are disjoint from every other argument (checked
    // above), JS is suspended for this synchronous call, and the borrows end
    // before it returns.
    let out = unsafe { out.as_mut() };
    let plain_out = unsafe { plain_out.as_mut() };
    check_out_len(out, 1)?;
    let out = &mut out[..DECODE_FIELDS];
    out.fill(0.0);
    match frame::decode_frame_into(frame, key, plain_out) {
        Ok(h) => {
            write_header(out, frame_status::OK, &h);
            Ok(frame_status::OK)
        }
        Err(err) => write_error(out, &err),
    }
}

/// Checks frames `buf[offsets[i]..offsets[i + 1]]` without keys, writing the
/// `decodeFrame` fields of frame i at `out[i * COUNT..]`. Secure frames are not
/// decrypted: `SECURE_UNCHECKED` once their CRC-16 passes, CRC-8 unchecked. Returns the
/// number of frames.
#[napi(js_name = "decodeFrames", catch_unwind)]
pub fn decode_frames(buf: &[u8], offsets: &[u32], mut out: Float64ArraySlice) -> Result<u32> {
    check_disjoint(buf, "buf", &out, "out")?;
    check_disjoint(offsets, "offsets", &out, "out")?;
    // SAFETY: as in `decode_frame`.
    let out = unsafe { out.as_mut() };
    if offsets.is_empty() {
        return Err(fail(
            native_error::OFFSETS_EMPTY,
            "expected n + 1 boundaries, got none",
        ));
    }
    let count = offsets.len() - 1;
    check_out_len(out, count)?;
    // No frames: nothing to check (the TypeScript codec reads no boundary either).
    if count == 0 {
        return Ok(0);
    }
    let ranges = checked_ranges(buf.len(), offsets)?;
    for (range, slot) in ranges.zip(out.chunks_exact_mut(DECODE_FIELDS)) {
        slot.fill(0.0);
        match frame::decode_frame_no_key(&buf[range]) {
            Ok(h) => {
                let status = if h.secure {
                    frame_status::SECURE_UNCHECKED
                } else {
                    frame_status::OK
                };
                write_header(slot, status, &h);
            }
            Err(err) => {
                write_error(slot, &err)?;
            }
        }
    }
    u32::try_from(count).map_err(|_| arg_error("too many frames"))
}

/// Builds n plain single-route frames back to back; frame i carries
/// `bodies[bodyOffsets[i]..bodyOffsets[i + 1]]` and is 16 + its body length bytes.
#[napi(js_name = "encodeFrames", catch_unwind)]
pub fn encode_frames(
    cmds: &[u8],
    aids: &[u32],
    tids: &[u8],
    timestamps: &[f64],
    bodies: &[u8],
    body_offsets: &[u32],
) -> Result<Uint8Array> {
    let n = cmds.len();
    if aids.len() != n || tids.len() != n || timestamps.len() != n {
        return Err(arg_error(format_args!(
            "cmds, aids, tids and timestamps must have the same length ({n}, {}, {}, {})",
            aids.len(),
            tids.len(),
            timestamps.len()
        )));
    }
    if body_offsets.len() != n + 1 && !(n == 0 && body_offsets.is_empty()) {
        return Err(arg_error(format_args!(
            "bodyOffsets must have {} entries, got {}",
            n + 1,
            body_offsets.len()
        )));
    }
    let ranges: Vec<_> = checked_ranges(bodies.len(), body_offsets)?.collect();
    let total: usize = ranges.iter().map(|r| frame::encoded_len(1, r.len())).sum();
    let mut out = vec![0u8; total];
    let mut pos = 0;
    for (i, range) in ranges.into_iter().enumerate() {
        let timestamp = timestamp_arg(timestamps[i]).map_err(|e| {
            // The same code, the frame index in the message.
            napi::Error::new(e.status, format!("frame {i}: {}", e.reason))
        })?;
        pos += frame::encode_frame_into(
            cmds[i],
            &[aids[i]],
            tids[i],
            timestamp,
            &bodies[range],
            None,
            &mut out[pos..],
        )
        .map_err(frame_error)?;
    }
    Ok(Uint8Array::new(out))
}
