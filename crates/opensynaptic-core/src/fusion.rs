//! The fusion engine's steady state: body text → signature and values, DIFF /
//! HEART bodies against a template's last values, DIFF body apply, and a
//! sender that mirrors one template and turns body text into frames.
//!
//! Only the steady state lives here. Assigning template ids, FULL frames,
//! registries and their stores stay with the caller (the TypeScript engine),
//! which is the source of truth; [`FusionSender`] holds a copy of one template
//! and reports every change it makes so the caller can apply it.
//!
//! Text is handled as UTF-8 bytes. Every separator is ASCII, so cutting bytes
//! gives the same pieces as cutting the UTF-16 string the TypeScript engine
//! works on; values compare equal as bytes exactly when they do as strings.

use std::fmt;
use std::ops::Range;

use opensynaptic_contract::{wire, wire_text};

use crate::cmd::{DATA_DIFF, DATA_HEART};
use crate::frame::{self, FrameError};

/// Placeholder for a value inside a signature (this and the next:
/// `opensynaptic_contract::{wire, wire_text}`, the numbers the packages use).
pub const VALUE_MARK: u8 = wire::VALUE_MARK as u8;
/// What replaces the timestamp token inside a signature.
pub const TS_MARK: &[u8] = wire_text::TS_MARK.as_bytes();
/// A DIFF value's length is one byte.
pub const MAX_DIFF_VALUE_LEN: usize = wire::MAX_DIFF_VALUE_LENGTH as usize;
/// Characters of the timestamp token that carry the 48-bit value.
pub const TIMESTAMP_TOKEN_LEN: usize = wire::TIMESTAMP_TOKEN_LENGTH as usize;
const _: () = assert!(wire::VALUE_MARK <= u8::MAX as u64 && MAX_DIFF_VALUE_LEN <= u8::MAX as usize);

/// Why body text did not decompose (the reference cannot cut it either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecomposeError {
    /// No `|` after the header.
    NoBar,
    /// No `.` before the timestamp token.
    NoDot,
    /// A sensor segment has its only `:` before the `>`.
    SensorColon,
}

impl fmt::Display for DecomposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecomposeError::NoBar => {
                "the body text has no \"|\" after its header (\"id.state.timestamp|...\")"
            }
            DecomposeError::NoDot => "the body header has no \".\" before the timestamp token",
            DecomposeError::SensorColon => {
                "a sensor segment has its \":\" before the \">\" (\"sid>state.unit:value\" expected)"
            }
        })
    }
}

impl std::error::Error for DecomposeError {}

/// A decomposed body. Reused between calls so that steady-state work does not
/// allocate.
#[derive(Debug, Default, Clone)]
pub struct Decomposed {
    /// `{id}.{state}.{TS}|` then each segment, sensor values as `\x01`, each
    /// followed by `|`.
    pub sig: Vec<u8>,
    /// Where each value sits in the text: two per sensor, `{state}.{unit}`
    /// and the Base62 value.
    pub values: Vec<Range<usize>>,
    /// Where the timestamp token sits in the text.
    pub token: Range<usize>,
}

fn find(text: &[u8], byte: u8, from: usize) -> Option<usize> {
    text[from..]
        .iter()
        .position(|&c| c == byte)
        .map(|i| i + from)
}

/// Cuts `[aid;]{id}.{state}.{ts8}|{seg}|...` into signature, values and
/// token, the way the reference (and `decompose` of `@opensynaptic/fusion`)
/// does. A segment `{sid}>{meta}:{value}` (split at its first `>` and last
/// `:`) contributes two values; any other segment stays in the signature.
pub fn decompose_into(text: &[u8], out: &mut Decomposed) -> Result<(), DecomposeError> {
    out.sig.clear();
    out.values.clear();
    out.token = 0..0;
    // The first ';' anywhere, as `indexOf` finds it.
    let start = find(text, b';', 0).map_or(0, |i| i + 1);
    let bar = find(text, b'|', start).ok_or(DecomposeError::NoBar)?;
    let dot = text[start..bar]
        .iter()
        .rposition(|&c| c == b'.')
        .map(|i| i + start)
        .ok_or(DecomposeError::NoDot)?;
    out.sig.extend_from_slice(&text[start..dot]);
    out.sig.extend_from_slice(b".{TS}|");
    let n = text.len();
    let mut pos = bar + 1;
    while pos < n {
        let next = find(text, b'|', pos).unwrap_or(n);
        if next > pos {
            let seg = &text[pos..next];
            let gt = seg.iter().position(|&c| c == b'>');
            let colon = gt.and_then(|_| seg.iter().rposition(|&c| c == b':'));
            match (gt, colon) {
                (Some(g), Some(c)) if c > g => {
                    out.values.push(pos + g + 1..pos + c);
                    out.values.push(pos + c + 1..next);
                    out.sig.extend_from_slice(&seg[..g]);
                    out.sig.extend_from_slice(b">\x01:\x01|");
                }
                (Some(_), Some(_)) => return Err(DecomposeError::SensorColon),
                _ => {
                    out.sig.extend_from_slice(seg);
                    out.sig.push(b'|');
                }
            }
        }
        pos = next + 1;
    }
    out.token = dot + 1..bar;
    Ok(())
}

/// Allocating form of [`decompose_into`].
pub fn decompose(text: &[u8]) -> Result<Decomposed, DecomposeError> {
    let mut d = Decomposed::default();
    decompose_into(text, &mut d)?;
    Ok(d)
}

fn b64url_value(c: u8) -> Option<u64> {
    Some(u64::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

/// The 48-bit timestamp of a body token: its first 8 base64url characters.
/// `None` when it is shorter or any character is not base64url.
pub fn decode_timestamp_token(token: &[u8]) -> Option<u64> {
    if token.len() < TIMESTAMP_TOKEN_LEN {
        return None;
    }
    let mut v = 0u64;
    for (i, &c) in token.iter().enumerate() {
        let d = b64url_value(c)?;
        if i < TIMESTAMP_TOKEN_LEN {
            v = v * 64 + d;
        }
    }
    Some(v)
}

/// Bytes of the DIFF mask for `count` values.
pub const fn mask_len(count: usize) -> usize {
    count.div_ceil(8)
}

/// What [`encode_diff_body`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffBody {
    /// Nothing changed: HEART, empty body.
    Heart,
    /// `changed` values changed: the DIFF body is in the output.
    Diff { changed: usize },
    /// Value `index` changed and is longer than a length byte can say; the
    /// sender must go FULL. The output is left empty.
    ValueTooLong { index: usize },
}

/// The DIFF body of `new` against `old` (same length): `ceil(n/8)` mask bytes
/// (big-endian; bit i = value i changed), then `[len][bytes]` for each changed
/// value. `out` is cleared first.
pub fn encode_diff_body<O: AsRef<[u8]>, N: AsRef<[u8]>>(
    old: &[O],
    new: &[N],
    out: &mut Vec<u8>,
) -> DiffBody {
    debug_assert_eq!(old.len(), new.len());
    diff_body_with(old.len(), |i| (old[i].as_ref(), new[i].as_ref()), out)
}

fn diff_body_with<'a>(
    count: usize,
    pair: impl Fn(usize) -> (&'a [u8], &'a [u8]),
    out: &mut Vec<u8>,
) -> DiffBody {
    out.clear();
    let ml = mask_len(count);
    let mut changed = 0;
    for i in 0..count {
        let (o, v) = pair(i);
        if o == v {
            continue;
        }
        if v.len() > MAX_DIFF_VALUE_LEN {
            out.clear();
            return DiffBody::ValueTooLong { index: i };
        }
        if changed == 0 {
            out.resize(ml, 0);
        }
        changed += 1;
        out[ml - 1 - (i >> 3)] |= 1 << (i & 7);
        out.push(v.len() as u8);
        out.extend_from_slice(v);
    }
    if changed == 0 {
        DiffBody::Heart
    } else {
        DiffBody::Diff { changed }
    }
}

/// A DIFF body whose mask or value lengths point past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffError {
    /// The body is shorter than the mask for `count` values.
    MaskCutShort {
        mask_len: usize,
        count: usize,
        len: usize,
    },
    /// The mask marks value `index` but the body has ended.
    MaskPastEnd { index: usize, len: usize },
    /// Value `index`'s length byte says `claimed`, only `remain` bytes follow.
    ValueOverrun {
        index: usize,
        claimed: usize,
        remain: usize,
    },
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same text as DiffOverrunError of @opensynaptic/fusion.
        match *self {
            DiffError::MaskCutShort {
                mask_len,
                count,
                len,
            } => write!(
                f,
                "the {mask_len}-byte mask for {count} values is cut short ({len} bytes)"
            ),
            DiffError::MaskPastEnd { index, len } => write!(
                f,
                "the mask marks value {index} but the body ends at byte {len}"
            ),
            DiffError::ValueOverrun {
                index,
                claimed,
                remain,
            } => write!(
                f,
                "value {index} claims {claimed} bytes but {remain} remain"
            ),
        }
    }
}

impl std::error::Error for DiffError {}

/// Reads a DIFF body for a template of `count` values: pushes `(index, range
/// of the new value in body)` for each value the mask marks, in order. Checks
/// the whole body before returning; on error `changed` holds what was read
/// before the fault. Mask bits past `count` and bytes after the last value are
/// ignored, as the reference does.
pub fn apply_diff(
    body: &[u8],
    count: usize,
    changed: &mut Vec<(usize, Range<usize>)>,
) -> Result<(), DiffError> {
    changed.clear();
    let ml = mask_len(count);
    let len = body.len();
    if len < ml {
        return Err(DiffError::MaskCutShort {
            mask_len: ml,
            count,
            len,
        });
    }
    let mut p = ml;
    for i in 0..count {
        if (body[ml - 1 - (i >> 3)] >> (i & 7)) & 1 == 0 {
            continue;
        }
        if p >= len {
            return Err(DiffError::MaskPastEnd { index: i, len });
        }
        let vl = usize::from(body[p]);
        if p + 1 + vl > len {
            return Err(DiffError::ValueOverrun {
                index: i,
                claimed: vl,
                remain: len - p - 1,
            });
        }
        changed.push((i, p + 1..p + 1 + vl));
        p += 1 + vl;
    }
    Ok(())
}

/// Why [`FusionSender::send`] left a body to the caller. Nothing changed. (The
/// numbers the addon reports for these are `opensynaptic_contract::fallback`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The text is not UTF-8.
    NotUtf8,
    /// The text does not decompose.
    Decompose(DecomposeError),
    /// The timestamp token is not 8+ base64url characters.
    Token,
    /// No template is loaded, or its values are unknown.
    NoTemplate,
    /// The body's signature is not the loaded template's.
    OtherSignature,
    /// Same signature, another number of values: FULL.
    ValueCount,
    /// A changed value is longer than 255 bytes: FULL.
    ValueTooLong,
}

/// Result of [`FusionSender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The body is not steady state (or not valid); the caller's full engine
    /// handles it.
    Fallback(Fallback),
    /// Frame encoding failed (output buffer too small).
    Frame(FrameError),
}

impl From<Fallback> for SendError {
    fn from(f: Fallback) -> Self {
        SendError::Fallback(f)
    }
}

/// One frame the sender produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// 170 (DIFF) or 127 (HEART), before the secure variant.
    pub cmd: u8,
    pub tid: u8,
    pub timestamp: u64,
    /// Bytes written to the output.
    pub frame_len: usize,
}

/// What [`FusionSender::template`] shows of the loaded template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateView<'a> {
    pub tid: u8,
    pub sig: &'a [u8],
    /// `None` when the template has no values.
    pub values: Option<&'a [Vec<u8>]>,
}

#[derive(Debug, Clone)]
struct Mirror {
    tid: u8,
    sig: Vec<u8>,
    values: Option<Vec<Vec<u8>>>,
}

/// The sender's steady state for one template: the copy of the template the
/// caller's engine would use next (its most recent one). For body text with
/// that signature and value count it builds the DIFF or HEART frame, updates
/// its copy and reports the changed values ([`changed`](Self::changed)); any
/// other body is left to the caller ([`Fallback`]) with nothing changed.
#[derive(Debug, Default, Clone)]
pub struct FusionSender {
    tpl: Option<Mirror>,
    d: Decomposed,
    body: Vec<u8>,
    changed: Vec<usize>,
}

impl FusionSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the template the next bodies are checked against (`values:
    /// None` when it has none).
    pub fn load<'a>(
        &mut self,
        tid: u8,
        sig: &[u8],
        values: Option<impl IntoIterator<Item = &'a [u8]>>,
    ) {
        let m = self.tpl.get_or_insert_with(|| Mirror {
            tid,
            sig: Vec::new(),
            values: None,
        });
        m.tid = tid;
        m.sig.clear();
        m.sig.extend_from_slice(sig);
        match values {
            None => m.values = None,
            Some(vs) => {
                let slot = m.values.get_or_insert_with(Vec::new);
                let mut n = 0;
                for v in vs {
                    if n < slot.len() {
                        slot[n].clear();
                        slot[n].extend_from_slice(v);
                    } else {
                        slot.push(v.to_vec());
                    }
                    n += 1;
                }
                slot.truncate(n);
            }
        }
    }

    /// Forgets the template: every body falls back until the next `load`.
    pub fn unload(&mut self) {
        self.tpl = None;
    }

    /// The loaded template.
    pub fn template(&self) -> Option<TemplateView<'_>> {
        self.tpl.as_ref().map(|m| TemplateView {
            tid: m.tid,
            sig: &m.sig,
            values: m.values.as_deref(),
        })
    }

    /// Builds the frame for `text` from route `aid` into `out` (which needs
    /// `text.len() + 16` bytes at most): DIFF when values changed, HEART when
    /// none did. A non-empty `key` makes it secure. On success the template
    /// copy holds the new values, [`changed`](Self::changed) lists the values
    /// that changed and [`value_range`](Self::value_range) where each sits in
    /// `text`.
    pub fn send(
        &mut self,
        text: &[u8],
        aid: u32,
        key: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<Sent, SendError> {
        self.changed.clear();
        if std::str::from_utf8(text).is_err() {
            return Err(Fallback::NotUtf8.into());
        }
        decompose_into(text, &mut self.d).map_err(Fallback::Decompose)?;
        let timestamp =
            decode_timestamp_token(&text[self.d.token.clone()]).ok_or(Fallback::Token)?;
        let Some(m) = self.tpl.as_mut() else {
            return Err(Fallback::NoTemplate.into());
        };
        if m.sig != self.d.sig {
            return Err(Fallback::OtherSignature.into());
        }
        let Some(old) = m.values.as_mut() else {
            return Err(Fallback::NoTemplate.into());
        };
        let ranges = &self.d.values;
        if old.len() != ranges.len() {
            return Err(Fallback::ValueCount.into());
        }
        let kind = diff_body_with(
            ranges.len(),
            |i| (old[i].as_slice(), &text[ranges[i].clone()]),
            &mut self.body,
        );
        let cmd = match kind {
            DiffBody::Heart => DATA_HEART,
            DiffBody::Diff { .. } => DATA_DIFF,
            DiffBody::ValueTooLong { .. } => return Err(Fallback::ValueTooLong.into()),
        };
        let frame_len =
            frame::encode_frame_into(cmd, &[aid], m.tid, timestamp, &self.body, key, out)
                .map_err(SendError::Frame)?;
        // Commit only once the frame exists.
        if cmd == DATA_DIFF {
            for (i, r) in ranges.iter().enumerate() {
                let v = &text[r.clone()];
                if old[i] != v {
                    old[i].clear();
                    old[i].extend_from_slice(v);
                    self.changed.push(i);
                }
            }
        }
        Ok(Sent {
            cmd,
            tid: m.tid,
            timestamp,
            frame_len,
        })
    }

    /// Values the last successful `send` changed, in order.
    pub fn changed(&self) -> &[usize] {
        &self.changed
    }

    /// Where value `index` of the last decomposed text sits in it.
    pub fn value_range(&self, index: usize) -> Range<usize> {
        self.d.values[index].clone()
    }

    /// The plain body of the last frame `send` built.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// [`send`](Self::send) over `bodies[ranges[i]]` for `i` from `start`,
    /// frames back to back into `out` from `out_pos`; `frame_ends[i]` gets the
    /// end of frame `i` in `out`. Stops at the first body that falls back,
    /// which is left undone ([`BatchRun::stop`]). For each value the run
    /// changed, `touched[value]` holds where its final text sits in `bodies`
    /// (`touched` is reset to the template's value count first).
    #[allow(clippy::too_many_arguments)]
    pub fn send_batch(
        &mut self,
        bodies: &[u8],
        ranges: &[Range<usize>],
        start: usize,
        aid: u32,
        key: Option<&[u8]>,
        out: &mut [u8],
        out_pos: usize,
        frame_ends: &mut [u32],
        touched: &mut Vec<Option<Range<usize>>>,
    ) -> Result<BatchRun, FrameError> {
        touched.clear();
        let count = self
            .tpl
            .as_ref()
            .and_then(|m| m.values.as_ref())
            .map_or(0, Vec::len);
        touched.resize(count, None);
        let mut pos = out_pos;
        let mut frames = 0;
        for (i, r) in ranges.iter().enumerate().skip(start) {
            match self.send(&bodies[r.clone()], aid, key, &mut out[pos..]) {
                Ok(sent) => {
                    pos += sent.frame_len;
                    frame_ends[i] = pos as u32;
                    frames += 1;
                    for &v in &self.changed {
                        let vr = &self.d.values[v];
                        touched[v] = Some(r.start + vr.start..r.start + vr.end);
                    }
                }
                Err(SendError::Fallback(why)) => {
                    return Ok(BatchRun {
                        next: i,
                        out_len: pos,
                        frames,
                        stop: Some(why),
                    })
                }
                Err(SendError::Frame(e)) => return Err(e),
            }
        }
        Ok(BatchRun {
            next: ranges.len(),
            out_len: pos,
            frames,
            stop: None,
        })
    }
}

/// What [`FusionSender::send_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRun {
    /// The first body not done: the one that fell back, or the count.
    pub next: usize,
    /// End of the last frame written in `out`.
    pub out_len: usize,
    /// Frames written.
    pub frames: usize,
    /// Why body `next` fell back (`None`: all done).
    pub stop: Option<Fallback>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::decode_frame_no_key;

    fn vals<'a>(text: &'a [u8], d: &Decomposed) -> Vec<&'a [u8]> {
        d.values.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn decomposes_like_the_reference() {
        let text = b"42;DEV1.ONLINE.AYvP5WgA|S1>OK.K:cmwc|S2>OK.Pa:1B3|";
        let d = decompose(text).unwrap();
        assert_eq!(d.sig, b"DEV1.ONLINE.{TS}|S1>\x01:\x01|S2>\x01:\x01|");
        assert_eq!(vals(text, &d), [&b"OK.K"[..], b"cmwc", b"OK.Pa", b"1B3"]);
        assert_eq!(&text[d.token.clone()], b"AYvP5WgA");
    }

    #[test]
    fn keeps_other_segments_in_the_signature() {
        let text = b"D.U.AAAAAAAA|&u4pruy|#aHR0cA|S1>a:b|@aGk";
        let d = decompose(text).unwrap();
        assert_eq!(d.sig, b"D.U.{TS}|&u4pruy|#aHR0cA|S1>\x01:\x01|@aGk|");
        assert_eq!(vals(text, &d), [&b"a"[..], b"b"]);
        // Empty segments vanish; a sensor splits at its first '>' and last ':'.
        let text = b"D.U.AAAAAAAA||S>x>y:z:w||";
        let d = decompose(text).unwrap();
        assert_eq!(d.sig, b"D.U.{TS}|S>\x01:\x01|");
        assert_eq!(vals(text, &d), [&b"x>y:z"[..], b"w"]);
    }

    #[test]
    fn reports_what_cannot_be_cut() {
        assert_eq!(
            decompose(b"D.U.AAAAAAAA").unwrap_err(),
            DecomposeError::NoBar
        );
        assert_eq!(
            decompose(b"42;DAAAA|S>a:b").unwrap_err(),
            DecomposeError::NoDot
        );
        // A '.' before the ';' does not count.
        assert_eq!(decompose(b"a.b;cd|x").unwrap_err(), DecomposeError::NoDot);
        assert_eq!(
            decompose(b"D.U.AAAAAAAA|S:a>b|").unwrap_err(),
            DecomposeError::SensorColon
        );
        // A ':' only before the segment makes it a plain segment.
        let d = decompose(b"D:x.U.AAAAAAAA|S>a|").unwrap();
        assert_eq!(d.sig, b"D:x.U.{TS}|S>a|");
        assert!(d.values.is_empty());
        // The first ';' anywhere starts the body, as indexOf finds it.
        let d = decompose(b"D.U.AAAAAAAA|S>a;b.c.AAAAAAAA|T>x:y").unwrap();
        assert_eq!(d.sig, b"b.c.{TS}|T>\x01:\x01|");
    }

    #[test]
    fn decodes_timestamp_tokens() {
        assert_eq!(decode_timestamp_token(b"AYvP5WgA"), Some(1_700_000_000_000));
        assert_eq!(
            decode_timestamp_token(b"AYvP5WgAAAAA"),
            Some(1_700_000_000_000)
        );
        assert_eq!(decode_timestamp_token(b"________"), Some((1 << 48) - 1));
        assert_eq!(decode_timestamp_token(b"AYvP5Wg"), None);
        assert_eq!(decode_timestamp_token(b"AYvP5Wg="), None);
        assert_eq!(decode_timestamp_token(b"AYvP5WgA="), None);
    }

    #[test]
    fn diff_bodies_round_trip() {
        let old = [
            b"OK.K".to_vec(),
            b"cmwc".to_vec(),
            b"OK".to_vec(),
            b"1".to_vec(),
        ];
        let mut body = Vec::new();
        assert_eq!(encode_diff_body(&old, &old, &mut body), DiffBody::Heart);
        assert!(body.is_empty());
        let new: [&[u8]; 4] = [b"OK.K", b"cmxc", b"OK", b""];
        assert_eq!(
            encode_diff_body(&old, &new, &mut body),
            DiffBody::Diff { changed: 2 }
        );
        assert_eq!(body, b"\x0a\x04cmxc\x00");
        let mut changed = Vec::new();
        apply_diff(&body, 4, &mut changed).unwrap();
        assert_eq!(changed, [(1, 2..6), (3, 7..7)]);
        let long = vec![b'x'; 256];
        let new: [&[u8]; 4] = [b"OK.K", b"cmwc", b"OK", &long];
        assert_eq!(
            encode_diff_body(&old, &new, &mut body),
            DiffBody::ValueTooLong { index: 3 }
        );
        assert!(body.is_empty());
    }

    #[test]
    fn masks_are_big_endian_over_bytes() {
        let old: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i]).collect();
        let mut new = old.clone();
        new[0] = b"z".to_vec();
        new[9] = b"y".to_vec();
        let mut body = Vec::new();
        encode_diff_body(&old, &new, &mut body);
        assert_eq!(body, b"\x02\x01\x01z\x01y");
        let mut changed = Vec::new();
        apply_diff(&body, 10, &mut changed).unwrap();
        assert_eq!(changed, [(0, 3..4), (9, 5..6)]);
    }

    #[test]
    fn hostile_diff_bodies_are_typed_errors() {
        let mut changed = Vec::new();
        let e = apply_diff(b"\x01", 10, &mut changed).unwrap_err();
        assert_eq!(
            e,
            DiffError::MaskCutShort {
                mask_len: 2,
                count: 10,
                len: 1
            }
        );
        assert_eq!(
            e.to_string(),
            "the 2-byte mask for 10 values is cut short (1 bytes)"
        );
        let e = apply_diff(b"\x03\x01a", 2, &mut changed).unwrap_err();
        assert_eq!(e, DiffError::MaskPastEnd { index: 1, len: 3 });
        assert_eq!(
            e.to_string(),
            "the mask marks value 1 but the body ends at byte 3"
        );
        let e = apply_diff(b"\x01\x05ab", 2, &mut changed).unwrap_err();
        assert_eq!(
            e,
            DiffError::ValueOverrun {
                index: 0,
                claimed: 5,
                remain: 2
            }
        );
        assert_eq!(e.to_string(), "value 0 claims 5 bytes but 2 remain");
        // Bits past the count and trailing bytes are ignored.
        apply_diff(b"\xfe\x00junk", 1, &mut changed).unwrap();
        assert!(changed.is_empty());
        apply_diff(b"", 0, &mut changed).unwrap();
    }

    fn sender_with(text: &[u8], tid: u8) -> FusionSender {
        let d = decompose(text).unwrap();
        let mut s = FusionSender::new();
        s.load(tid, &d.sig, Some(vals(text, &d)));
        s
    }

    #[test]
    fn sender_builds_diff_and_heart_frames() {
        let a = b"42;DEV1.ONLINE.AYvP5WgA|S1>OK.K:cmwc|S2>OK.Pa:1B3|";
        let b = b"42;DEV1.ONLINE.AYvP5WgB|S1>OK.K:cmxc|S2>OK.Pa:1B3|";
        let mut s = sender_with(a, 1);
        let mut out = vec![0u8; 256];
        let sent = s.send(b, 42, None, &mut out).unwrap();
        assert_eq!(
            (sent.cmd, sent.tid, sent.timestamp),
            (DATA_DIFF, 1, 1_700_000_000_001)
        );
        assert_eq!(s.changed(), [1]);
        assert_eq!(&b[s.value_range(1)], b"cmxc");
        let expected = frame::encode_frame(
            DATA_DIFF,
            &[42],
            1,
            1_700_000_000_001,
            b"\x02\x04cmxc",
            None,
        )
        .unwrap();
        assert_eq!(&out[..sent.frame_len], expected);
        let h = decode_frame_no_key(&out[..sent.frame_len]).unwrap();
        assert_eq!(h.source_aid, 42);
        // Same values again: HEART with an empty body, nothing changed.
        let sent = s.send(b, 42, None, &mut out).unwrap();
        assert_eq!(sent.cmd, DATA_HEART);
        assert!(s.changed().is_empty());
        assert_eq!(
            &out[..sent.frame_len],
            frame::encode_frame(DATA_HEART, &[42], 1, 1_700_000_000_001, b"", None).unwrap()
        );
        // Secure: the same body XORed under the key.
        let key = [7u8; 32];
        let sent = s.send(a, 42, Some(&key), &mut out).unwrap();
        assert_eq!(
            &out[..sent.frame_len],
            frame::encode_frame(
                DATA_DIFF,
                &[42],
                1,
                1_700_000_000_000,
                b"\x02\x04cmwc",
                Some(&key)
            )
            .unwrap()
        );
        assert_eq!(s.body(), b"\x02\x04cmwc");
    }

    #[test]
    fn sender_leaves_everything_else_unchanged() {
        let a = b"DEV1.ONLINE.AYvP5WgA|S1>OK.K:cmwc|";
        let mut out = vec![0u8; 1024];
        let mut s = FusionSender::new();
        assert_eq!(
            s.send(a, 1, None, &mut out),
            Err(SendError::Fallback(Fallback::NoTemplate))
        );
        s.load(3, b"DEV1.ONLINE.{TS}|S1>\x01:\x01|", None::<Vec<&[u8]>>);
        assert_eq!(
            s.send(a, 1, None, &mut out),
            Err(SendError::Fallback(Fallback::NoTemplate))
        );
        let mut s = sender_with(a, 3);
        let cases: [(&[u8], Fallback); 7] = [
            (b"DEV1.ONLINE.AYvP5WgA|S1>OK.K:\xff|", Fallback::NotUtf8),
            (
                b"DEV1.ONLINE.AYvP5WgA",
                Fallback::Decompose(DecomposeError::NoBar),
            ),
            (b"DEV1.ONLINE.AYvP5W|S1>OK.K:cmwc|", Fallback::Token),
            (
                b"DEV1.ONLINE.AYvP5WgA|S2>OK.K:cmwc|",
                Fallback::OtherSignature,
            ),
            (
                b"DEV1.ONLINE.AYvP5WgA|S1>OK.K:cmwc|S1>OK.K:cmwc|",
                Fallback::OtherSignature,
            ),
            (
                b"DEV1.ONLINE.AYvP5WgA|S1>OK.K:cmwc|&x|",
                Fallback::OtherSignature,
            ),
            (
                b"DEV1.OFFLINE.AYvP5WgA|S1>OK.K:cmwc|",
                Fallback::OtherSignature,
            ),
        ];
        for (text, why) in cases {
            assert_eq!(
                s.send(text, 1, None, &mut out),
                Err(SendError::Fallback(why))
            );
        }
        let long = [&b"DEV1.ONLINE.AYvP5WgA|S1>OK.K:"[..], &[b'1'; 256], b"|"].concat();
        assert_eq!(
            s.send(&long, 1, None, &mut out),
            Err(SendError::Fallback(Fallback::ValueTooLong))
        );
        let values = s.template().unwrap().values;
        assert_eq!(values.unwrap(), [b"OK.K".to_vec(), b"cmwc".to_vec()]);
        // Too small an output: a frame error, values unchanged.
        let b = b"DEV1.ONLINE.AYvP5WgA|S1>OK.K:cmxc|";
        assert!(matches!(
            s.send(b, 1, None, &mut out[..10]),
            Err(SendError::Frame(_))
        ));
        assert_eq!(s.template().unwrap().values.unwrap()[1], b"cmwc");
        // A different value count under the same signature cannot happen
        // through decompose; a loaded template with other values can.
        s.load(3, b"DEV1.ONLINE.{TS}|S1>\x01:\x01|", Some([&b"x"[..]]));
        assert_eq!(
            s.send(b, 1, None, &mut out),
            Err(SendError::Fallback(Fallback::ValueCount))
        );
        s.unload();
        assert!(s.template().is_none());
    }

    #[test]
    fn sender_batches_stop_at_the_first_fallback() {
        let a: &[u8] = b"D.U.AAAAAAAA|a>b:c|x>1:2|";
        let b: &[u8] = b"D.U.AAAAAAAB|a>b:d|x>1:2|";
        let c: &[u8] = b"D.U.AAAAAAAC|a>b:d|x>1:3|";
        let other: &[u8] = b"D.U.AAAAAAAD|z>b:d|";
        let seq = [b, c, b, c, other, a];
        let bodies = seq.concat();
        let mut ranges = Vec::new();
        let mut at = 0;
        for t in seq {
            ranges.push(at..at + t.len());
            at += t.len();
        }
        let mut s = sender_with(a, 9);
        let mut out = vec![0u8; bodies.len() + 16 * seq.len()];
        let mut ends = vec![0u32; seq.len()];
        let mut touched = Vec::new();
        let run = s
            .send_batch(
                &bodies,
                &ranges,
                0,
                5,
                None,
                &mut out,
                0,
                &mut ends,
                &mut touched,
            )
            .unwrap();
        assert_eq!(run.next, 4);
        assert_eq!(run.frames, 4);
        assert_eq!(run.stop, Some(Fallback::OtherSignature));
        assert_eq!(run.out_len, ends[3] as usize);
        // Same frames as one send after another.
        let mut one = sender_with(a, 9);
        let mut prev = 0;
        for (i, t) in seq[..4].iter().enumerate() {
            let mut f = vec![0u8; 64];
            let sent = one.send(t, 5, None, &mut f).unwrap();
            assert_eq!(&out[prev..ends[i] as usize], &f[..sent.frame_len]);
            prev = ends[i] as usize;
        }
        // Value 1 changed once, in body 0 ("d"); value 3 last in body 3 ("3").
        assert_eq!(touched.len(), 4);
        assert_eq!(touched[0], None);
        assert_eq!(&bodies[touched[1].clone().unwrap()], b"d");
        assert_eq!(touched[1].clone().unwrap().start, ranges[0].start + 17);
        assert_eq!(touched[2], None);
        assert_eq!(&bodies[touched[3].clone().unwrap()], b"3");
        assert_eq!(touched[3].clone().unwrap().start, ranges[3].start + 23);
        // Resume after the fallback body.
        let run = s
            .send_batch(
                &bodies,
                &ranges,
                5,
                5,
                None,
                &mut out,
                run.out_len,
                &mut ends,
                &mut touched,
            )
            .unwrap();
        assert_eq!((run.next, run.frames, run.stop), (6, 1, None));
        assert_eq!(&bodies[touched[1].clone().unwrap()], b"c");
    }

    #[test]
    fn sender_frames_fit_text_plus_16() {
        // The bound the JS side sizes its buffers with.
        let a = b"D.U.AAAAAAAA|a>b:c|";
        let b = b"D.U.AAAAAAAA|a>x:y|";
        let mut s = sender_with(a, 1);
        let mut out = vec![0u8; b.len() + 16];
        let sent = s.send(b, u32::MAX, Some(&[1, 2, 3]), &mut out).unwrap();
        assert!(sent.frame_len <= b.len() + 16);
        let mut s = sender_with(b"D.U.AAAAAAAA|>:|>:|>:|>:|>:|>:|>:|>:|>:|", 1);
        let c = b"D.U.AAAAAAAA|>1:1|>1:1|>1:1|>1:1|>1:1|>1:1|>1:1|>1:1|>1:1|";
        let mut out = vec![0u8; c.len() + 16];
        let sent = s
            .send(c, 1, None, &mut out)
            .unwrap_or_else(|_| unreachable!());
        assert!(sent.frame_len <= c.len() + 16);
    }
}
