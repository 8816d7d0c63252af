//! Binary data frames.
//!
//! ```text
//! [cmd:1][route_count:1][route_id:4 BE]*route_count[tid:1][ts:6 BE][body:N][crc8:1][crc16:2 BE]
//! ```
//!
//! `crc8` covers the PLAIN body (it travels in clear even for secure frames and
//! seeds the XOR offset); `crc16` covers every wire byte from `cmd` to `crc8`.

use std::fmt;

use opensynaptic_contract::wire;

use crate::cmd::{is_data, is_secure_data, normalize_data, secure_variant};
use crate::crc::{crc16, crc8};
use crate::security::xor_payload_into;

/// Bytes of a frame besides its routes and body: cmd, route count, tid, six
/// timestamp bytes, crc8 and crc16 (`opensynaptic_contract::wire`, as are the next).
pub const FRAME_OVERHEAD: usize = wire::FRAME_OVERHEAD as usize;
/// Shorter inputs are rejected before the route count is even read.
pub const MIN_FRAME_LEN: usize = wire::MIN_FRAME_LENGTH as usize;
/// Largest timestamp that fits the 48-bit wire field.
pub const MAX_TIMESTAMP: u64 = wire::MAX_TIMESTAMP;
/// The route count is a single byte.
pub const MAX_ROUTES: usize = wire::MAX_ROUTES as usize;
const _: () = assert!(MAX_ROUTES <= u8::MAX as usize && MAX_TIMESTAMP < 1 << 48);

/// Total wire length of a frame.
pub const fn encoded_len(route_count: usize, body_len: usize) -> usize {
    FRAME_OVERHEAD + 4 * route_count + body_len
}

/// Header fields of a frame that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Command byte as on the wire.
    pub cmd: u8,
    /// `cmd` with the secure flag removed.
    pub base_cmd: u8,
    /// The body was XOR-obfuscated on the wire.
    pub secure: bool,
    pub route_count: u8,
    /// The last route id (the sender), 0 when there are no routes.
    pub source_aid: u32,
    pub tid: u8,
    /// The 48-bit wire timestamp (normally milliseconds; 0 means "no clock").
    pub timestamp: u64,
    /// Where the body starts in the frame.
    pub body_offset: usize,
    pub body_len: usize,
    /// CRC-8 byte as on the wire.
    pub crc8: u8,
    /// CRC-16 as on the wire.
    pub crc16: u16,
}

/// What went wrong, with the values involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameErrorKind {
    /// Fewer than [`MIN_FRAME_LEN`] bytes.
    TooShort { len: usize },
    /// Shorter than the header and trailer its route count calls for.
    IncompleteHeader { len: usize, needed: usize },
    /// `expected` is the CRC-16 on the wire, `actual` the computed one.
    Crc16Mismatch { expected: u16, actual: u16 },
    /// A secure frame arrived and no session key was supplied.
    MissingSecureKey { aid: u32 },
    /// `expected` is the CRC-8 on the wire, `actual` the one computed over the
    /// (un-XORed) body.
    Crc8Mismatch { expected: u8, actual: u8 },
    /// Intact frame whose command byte is not a data command.
    UnknownCommand { cmd: u8 },
    /// Encoding: the timestamp does not fit in 48 bits.
    TimestampOutOfRange { timestamp: u64 },
    /// Encoding: more than [`MAX_ROUTES`] routes.
    TooManyRoutes { count: usize },
    /// The caller's output buffer cannot hold the result.
    BufferTooSmall { needed: usize, available: usize },
}

/// A frame error and the header fields read before it was detected.
///
/// The fields follow the reference's error records: nothing for length errors;
/// the command, route count, source aid and wire CRC-16 for a CRC-16 mismatch;
/// every header field for the errors found after the CRC-16 has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError {
    pub kind: FrameErrorKind,
    pub cmd: Option<u8>,
    pub route_count: Option<u8>,
    pub source_aid: Option<u32>,
    pub tid: Option<u8>,
    pub timestamp: Option<u64>,
    pub body_offset: Option<usize>,
    pub body_len: Option<usize>,
    /// CRC-8 byte as on the wire.
    pub crc8: Option<u8>,
    /// CRC-16 as on the wire.
    pub crc16: Option<u16>,
}

impl FrameError {
    fn bare(kind: FrameErrorKind) -> Self {
        FrameError {
            kind,
            cmd: None,
            route_count: None,
            source_aid: None,
            tid: None,
            timestamp: None,
            body_offset: None,
            body_len: None,
            crc8: None,
            crc16: None,
        }
    }

    fn with_header(kind: FrameErrorKind, h: &FrameHeader) -> Self {
        FrameError {
            kind,
            cmd: Some(h.cmd),
            route_count: Some(h.route_count),
            source_aid: Some(h.source_aid),
            tid: Some(h.tid),
            timestamp: Some(h.timestamp),
            body_offset: Some(h.body_offset),
            body_len: Some(h.body_len),
            crc8: Some(h.crc8),
            crc16: Some(h.crc16),
        }
    }
}

impl fmt::Display for FrameErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages start with the reference's error text so logs line up.
        match *self {
            FrameErrorKind::TooShort { len } => write!(
                f,
                "Packet too short: {len} bytes, a frame has at least {MIN_FRAME_LEN}"
            ),
            FrameErrorKind::IncompleteHeader { len, needed } => write!(
                f,
                "Incomplete Binary Header: {len} bytes, its route count needs at least {needed}"
            ),
            FrameErrorKind::Crc16Mismatch { expected, actual } => write!(
                f,
                "CRC16 mismatch: frame carries 0x{expected:04x}, computed 0x{actual:04x}"
            ),
            FrameErrorKind::MissingSecureKey { aid } => {
                write!(f, "Missing secure key for aid={aid}")
            }
            FrameErrorKind::Crc8Mismatch { expected, actual } => write!(
                f,
                "CRC8 mismatch: frame carries 0x{expected:02x}, computed 0x{actual:02x}"
            ),
            FrameErrorKind::UnknownCommand { cmd } => write!(f, "Unknown Command 0x{cmd:x}"),
            FrameErrorKind::TimestampOutOfRange { timestamp } => write!(
                f,
                "timestamp {timestamp} does not fit the 48-bit frame field (max {MAX_TIMESTAMP})"
            ),
            FrameErrorKind::TooManyRoutes { count } => {
                write!(
                    f,
                    "{count} routes given, a frame holds at most {MAX_ROUTES}"
                )
            }
            FrameErrorKind::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer too small: {needed} bytes needed, {available} available"
            ),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for FrameError {}

fn use_key(key: Option<&[u8]>) -> Option<&[u8]> {
    key.filter(|k| !k.is_empty())
}

/// Writes a frame into `out` and returns its length ([`encoded_len`]).
///
/// With a non-empty `key` the body is XORed (offset = crc8 of the plain body)
/// and a plain data command becomes its secure variant. Any other command keeps
/// its byte but still has its body XORed, as the reference does.
pub fn encode_frame_into(
    cmd: u8,
    routes: &[u32],
    tid: u8,
    timestamp: u64,
    body: &[u8],
    key: Option<&[u8]>,
    out: &mut [u8],
) -> Result<usize, FrameError> {
    if timestamp > MAX_TIMESTAMP {
        return Err(FrameError::bare(FrameErrorKind::TimestampOutOfRange {
            timestamp,
        }));
    }
    if routes.len() > MAX_ROUTES {
        return Err(FrameError::bare(FrameErrorKind::TooManyRoutes {
            count: routes.len(),
        }));
    }
    let len = encoded_len(routes.len(), body.len());
    if out.len() < len {
        return Err(FrameError::bare(FrameErrorKind::BufferTooSmall {
            needed: len,
            available: out.len(),
        }));
    }
    let out = &mut out[..len];
    let key = use_key(key);
    let body_crc = crc8(body);

    out[0] = if key.is_some() {
        secure_variant(cmd)
    } else {
        cmd
    };
    out[1] = routes.len() as u8;
    let mut pos = 2;
    for route in routes {
        out[pos..pos + 4].copy_from_slice(&route.to_be_bytes());
        pos += 4;
    }
    out[pos] = tid;
    out[pos + 1..pos + 7].copy_from_slice(&timestamp.to_be_bytes()[2..]);
    pos += 7;
    let body_out = &mut out[pos..pos + body.len()];
    match key {
        Some(k) => xor_payload_into(body, k, u32::from(body_crc & 31), body_out),
        None => body_out.copy_from_slice(body),
    }
    pos += body.len();
    out[pos] = body_crc;
    let frame_crc = crc16(&out[..=pos]);
    out[pos + 1..].copy_from_slice(&frame_crc.to_be_bytes());
    Ok(len)
}

/// Allocating form of [`encode_frame_into`].
pub fn encode_frame(
    cmd: u8,
    routes: &[u32],
    tid: u8,
    timestamp: u64,
    body: &[u8],
    key: Option<&[u8]>,
) -> Result<Vec<u8>, FrameError> {
    if routes.len() > MAX_ROUTES {
        return Err(FrameError::bare(FrameErrorKind::TooManyRoutes {
            count: routes.len(),
        }));
    }
    let mut out = vec![0u8; encoded_len(routes.len(), body.len())];
    encode_frame_into(cmd, routes, tid, timestamp, body, key, &mut out)?;
    Ok(out)
}

/// Length, layout and CRC-16 checks shared by every decoder.
fn parse_checked(frame: &[u8]) -> Result<FrameHeader, FrameError> {
    let len = frame.len();
    if len < MIN_FRAME_LEN {
        return Err(FrameError::bare(FrameErrorKind::TooShort { len }));
    }
    let route_count = frame[1];
    let routes_end = 2 + 4 * route_count as usize;
    let needed = encoded_len(route_count as usize, 0);
    if len < needed {
        return Err(FrameError::bare(FrameErrorKind::IncompleteHeader {
            len,
            needed,
        }));
    }
    let cmd = frame[0];
    let source_aid = if route_count == 0 {
        0
    } else {
        u32::from_be_bytes([
            frame[routes_end - 4],
            frame[routes_end - 3],
            frame[routes_end - 2],
            frame[routes_end - 1],
        ])
    };
    let wire_crc16 = u16::from_be_bytes([frame[len - 2], frame[len - 1]]);
    let computed = crc16(&frame[..len - 2]);
    if computed != wire_crc16 {
        return Err(FrameError {
            cmd: Some(cmd),
            route_count: Some(route_count),
            source_aid: Some(source_aid),
            crc16: Some(wire_crc16),
            ..FrameError::bare(FrameErrorKind::Crc16Mismatch {
                expected: wire_crc16,
                actual: computed,
            })
        });
    }
    let mut ts = [0u8; 8];
    ts[2..].copy_from_slice(&frame[routes_end + 1..routes_end + 7]);
    let body_offset = routes_end + 7;
    Ok(FrameHeader {
        cmd,
        base_cmd: normalize_data(cmd),
        secure: is_secure_data(cmd),
        route_count,
        source_aid,
        tid: frame[routes_end],
        timestamp: u64::from_be_bytes(ts),
        body_offset,
        body_len: len - 3 - body_offset,
        crc8: frame[len - 3],
        crc16: wire_crc16,
    })
}

/// The checks that follow un-XORing: CRC-8 over the plain body, then the
/// command class.
fn check_body(header: &FrameHeader, plain: &[u8]) -> Result<(), FrameError> {
    let actual = crc8(plain);
    if actual != header.crc8 {
        return Err(FrameError::with_header(
            FrameErrorKind::Crc8Mismatch {
                expected: header.crc8,
                actual,
            },
            header,
        ));
    }
    if !is_data(header.cmd) {
        return Err(FrameError::with_header(
            FrameErrorKind::UnknownCommand { cmd: header.cmd },
            header,
        ));
    }
    Ok(())
}

fn frame_body<'a>(frame: &'a [u8], header: &FrameHeader) -> &'a [u8] {
    &frame[header.body_offset..header.body_offset + header.body_len]
}

/// Decodes and verifies a frame, writing the plain body of a secure frame into
/// `plain_out[..body_len]` (plain frames leave `plain_out` untouched: their
/// body is `frame[body_offset..][..body_len]`).
///
/// Checks run in the reference's order: length, header length, CRC-16, secure
/// key presence, CRC-8 of the plain body, command class. An empty key counts
/// as no key.
pub fn decode_frame_into(
    frame: &[u8],
    key: Option<&[u8]>,
    plain_out: &mut [u8],
) -> Result<FrameHeader, FrameError> {
    let header = parse_checked(frame)?;
    finish_decode(frame, header, key, plain_out)
}

fn finish_decode(
    frame: &[u8],
    header: FrameHeader,
    key: Option<&[u8]>,
    plain_out: &mut [u8],
) -> Result<FrameHeader, FrameError> {
    if header.secure {
        let Some(key) = use_key(key) else {
            return Err(FrameError::with_header(
                FrameErrorKind::MissingSecureKey {
                    aid: header.source_aid,
                },
                &header,
            ));
        };
        if plain_out.len() < header.body_len {
            return Err(FrameError::with_header(
                FrameErrorKind::BufferTooSmall {
                    needed: header.body_len,
                    available: plain_out.len(),
                },
                &header,
            ));
        }
        let plain = &mut plain_out[..header.body_len];
        xor_payload_into(
            frame_body(frame, &header),
            key,
            u32::from(header.crc8 & 31),
            plain,
        );
        check_body(&header, plain)?;
    } else {
        check_body(&header, frame_body(frame, &header))?;
    }
    Ok(header)
}

/// [`decode_frame_into`] with a growable buffer: on success `plain_out` holds
/// the plain body of a secure frame and is empty for a plain one; on error it
/// is empty.
pub fn decode_frame(
    frame: &[u8],
    key: Option<&[u8]>,
    plain_out: &mut Vec<u8>,
) -> Result<FrameHeader, FrameError> {
    plain_out.clear();
    let header = parse_checked(frame)?;
    if header.secure && use_key(key).is_some() {
        plain_out.resize(header.body_len, 0);
    }
    let result = finish_decode(frame, header, key, plain_out);
    if result.is_err() {
        plain_out.clear();
    }
    result
}

/// Verifies a frame without a session key.
///
/// Plain frames get every check, as in [`decode_frame_into`]. A secure frame is
/// returned once its CRC-16 passes, with `secure == true` and its CRC-8 NOT
/// verified (that needs the key).
pub fn decode_frame_no_key(frame: &[u8]) -> Result<FrameHeader, FrameError> {
    let header = parse_checked(frame)?;
    if !header.secure {
        check_body(&header, frame_body(frame, &header))?;
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::*;

    const KEY: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
    const BODY: &[u8] = b"42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|";

    #[test]
    fn layout() {
        let f = encode_frame(DATA_HEART, &[42], 1, 0x018b_cfe5_6800, b"", None).unwrap();
        assert_eq!(
            f,
            [0x7f, 1, 0, 0, 0, 0x2a, 1, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00, 0xfb, 0x93]
        );
        assert_eq!(f.len(), encoded_len(1, 0));
    }

    #[test]
    fn plain_round_trip() {
        let f = encode_frame(DATA_FULL, &[1, 2, 42], 7, MAX_TIMESTAMP, BODY, None).unwrap();
        let mut plain = vec![1, 2, 3];
        let h = decode_frame(&f, None, &mut plain).unwrap();
        assert!(plain.is_empty());
        assert_eq!(
            h,
            FrameHeader {
                cmd: DATA_FULL,
                base_cmd: DATA_FULL,
                secure: false,
                route_count: 3,
                source_aid: 42,
                tid: 7,
                timestamp: MAX_TIMESTAMP,
                body_offset: 21,
                body_len: BODY.len(),
                crc8: crc8(BODY),
                crc16: u16::from_be_bytes([f[f.len() - 2], f[f.len() - 1]]),
            }
        );
        assert_eq!(&f[h.body_offset..h.body_offset + h.body_len], BODY);
        assert_eq!(decode_frame_no_key(&f), Ok(h));
    }

    #[test]
    fn secure_round_trip() {
        let f = encode_frame(DATA_DIFF, &[42], 1, 5, BODY, Some(&KEY)).unwrap();
        assert_eq!(f[0], DATA_DIFF_SEC);
        assert_ne!(&f[14..14 + BODY.len()], BODY);
        let mut plain = Vec::new();
        let h = decode_frame(&f, Some(&KEY), &mut plain).unwrap();
        assert!(h.secure);
        assert_eq!(h.base_cmd, DATA_DIFF);
        assert_eq!(plain, BODY);

        let nokey = decode_frame(&f, None, &mut plain).unwrap_err();
        assert_eq!(nokey.kind, FrameErrorKind::MissingSecureKey { aid: 42 });
        assert_eq!(nokey.to_string(), "Missing secure key for aid=42");
        assert_eq!((nokey.tid, nokey.timestamp), (Some(1), Some(5)));
        assert_eq!(
            decode_frame(&f, Some(&[]), &mut plain).unwrap_err().kind,
            FrameErrorKind::MissingSecureKey { aid: 42 }
        );

        let wrong = decode_frame(&f, Some(&[1, 2, 3]), &mut plain).unwrap_err();
        assert!(matches!(wrong.kind, FrameErrorKind::Crc8Mismatch { .. }));

        let unchecked = decode_frame_no_key(&f).unwrap();
        assert!(unchecked.secure);
    }

    #[test]
    fn empty_key_means_plain() {
        let a = encode_frame(DATA_FULL, &[42], 1, 5, BODY, Some(&[])).unwrap();
        let b = encode_frame(DATA_FULL, &[42], 1, 5, BODY, None).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn encode_rejects_bad_input() {
        let e = encode_frame(DATA_FULL, &[42], 1, 1 << 48, b"", None).unwrap_err();
        assert_eq!(
            e.kind,
            FrameErrorKind::TimestampOutOfRange { timestamp: 1 << 48 }
        );
        let e = encode_frame(DATA_FULL, &[0; 256], 1, 0, b"", None).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::TooManyRoutes { count: 256 });
        let mut small = [0u8; 15];
        let e = encode_frame_into(DATA_FULL, &[42], 1, 0, b"", None, &mut small).unwrap_err();
        assert_eq!(
            e.kind,
            FrameErrorKind::BufferTooSmall {
                needed: 16,
                available: 15
            }
        );
        assert!(encode_frame(DATA_FULL, &[7; 255], 1, 0, b"x", None).is_ok());
    }

    #[test]
    fn decode_check_order() {
        let mut plain = Vec::new();
        let short = decode_frame(&[0x3f, 1, 0, 0], None, &mut plain).unwrap_err();
        assert_eq!(short.kind, FrameErrorKind::TooShort { len: 4 });
        assert_eq!(short.cmd, None);

        let good = encode_frame(DATA_FULL, &[42], 1, 5, BODY, None).unwrap();
        let e = decode_frame(&good[..15], None, &mut plain).unwrap_err();
        assert_eq!(
            e.kind,
            FrameErrorKind::IncompleteHeader {
                len: 15,
                needed: 16
            }
        );

        let mut bad16 = good.clone();
        *bad16.last_mut().unwrap() ^= 1;
        let e = decode_frame(&bad16, None, &mut plain).unwrap_err();
        assert!(matches!(e.kind, FrameErrorKind::Crc16Mismatch { .. }));
        assert_eq!(
            (e.cmd, e.source_aid, e.tid),
            (Some(DATA_FULL), Some(42), None)
        );

        let unknown = encode_frame(0x05, &[42], 1, 5, BODY, None).unwrap();
        let e = decode_frame(&unknown, None, &mut plain).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::UnknownCommand { cmd: 5 });
        assert_eq!(e.to_string(), "Unknown Command 0x5");
        assert_eq!(decode_frame_no_key(&unknown).unwrap_err().kind, e.kind);
    }

    #[test]
    fn zero_routes() {
        let f = encode_frame(DATA_HEART, &[], 1, 5, b"", None).unwrap();
        assert_eq!(f.len(), 12);
        let h = decode_frame_no_key(&f).unwrap();
        assert_eq!((h.route_count, h.source_aid, h.body_len), (0, 0, 0));
    }

    #[test]
    fn plain_buffer_too_small() {
        let f = encode_frame(DATA_FULL, &[42], 1, 5, BODY, Some(&KEY)).unwrap();
        let mut out = [0u8; 4];
        let e = decode_frame_into(&f, Some(&KEY), &mut out).unwrap_err();
        assert!(matches!(e.kind, FrameErrorKind::BufferTooSmall { .. }));
    }
}
