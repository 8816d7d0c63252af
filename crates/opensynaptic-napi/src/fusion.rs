//! The fusion steady state for `@opensynaptic/fusion`.
//!
//! A call into the addon costs ~100 ns plus ~20 ns per typed-array argument;
//! a class method call (`this` unwrap) costs more than the work, and a new JS
//! buffer per result several hundred ns. So the crossing is shaped for that:
//! free functions; per-engine state in a slab addressed by a number; inputs,
//! results and the frame in one caller-owned `io` buffer the JS side reuses,
//! with a fixed control area of native-endian `u32` words at its start (read
//! there through a `Uint32Array` view of the same memory).
//!
//! The layout of `io` (control words, their indexes, the fallback codes) is
//! `opensynaptic_contract::{fusion_io, sender_load, send_batch, fallback}`; the
//! packages read the TypeScript copy generated from it.

use std::cell::RefCell;
use std::ops::Range;

use napi::bindgen_prelude::{Uint32ArraySlice, Uint8ArraySlice};
use napi_derive::napi;
use opensynaptic_contract::{
    fallback, fusion_io, native_error, send_batch as w, sender_load as load,
};
use opensynaptic_core::fusion::{Fallback, FusionSender};

use crate::{arg_error, check_disjoint, checked_ranges, fail, frame_error, Result};

/// Bytes of control words at the start of `io`.
const CTRL: usize = fusion_io::CTRL_BYTES as usize;
/// "No value" in a control word.
const NONE: u32 = fusion_io::NONE;
/// Bytes of one `index, start, end` list entry.
const ENTRY: usize = fusion_io::ENTRY_BYTES as usize;

/// The contract's code for why a body fell back.
fn fallback_code(why: Fallback) -> u32 {
    match why {
        Fallback::NotUtf8 => fallback::NOT_UTF8,
        Fallback::Decompose(_) => fallback::DECOMPOSE,
        Fallback::Token => fallback::TOKEN,
        Fallback::NoTemplate => fallback::NO_TEMPLATE,
        Fallback::OtherSignature => fallback::OTHER_SIGNATURE,
        Fallback::ValueCount => fallback::VALUE_COUNT,
        Fallback::ValueTooLong => fallback::VALUE_TOO_LONG,
    }
}

thread_local! {
    static SENDERS: RefCell<Slab> = RefCell::new(Slab::default());
}

#[derive(Default)]
struct Slab {
    items: Vec<Option<FusionSender>>,
    free: Vec<u32>,
}

fn with_sender<T>(id: u32, f: impl FnOnce(&mut FusionSender) -> Result<T>) -> Result<T> {
    SENDERS.with(|s| {
        let mut slab = s.borrow_mut();
        match slab.items.get_mut(id as usize) {
            Some(Some(sender)) => f(sender),
            _ => Err(fail(
                native_error::NO_SENDER,
                format_args!("no fusion sender {id}"),
            )),
        }
    })
}

fn word(io: &[u8], w: u32) -> u32 {
    let w = w as usize;
    u32::from_ne_bytes([io[4 * w], io[4 * w + 1], io[4 * w + 2], io[4 * w + 3]])
}

fn set_word(io: &mut [u8], w: u32, v: u32) {
    let w = w as usize;
    io[4 * w..4 * w + 4].copy_from_slice(&v.to_ne_bytes());
}

fn set_usize(io: &mut [u8], w: u32, v: usize) -> Result<()> {
    let v = u32::try_from(v).map_err(|_| arg_error("offset past 4 GiB"))?;
    set_word(io, w, v);
    Ok(())
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn need(io: &[u8], bytes: usize) -> Result<()> {
    if io.len() < bytes {
        return Err(arg_error(format_args!(
            "io must hold {bytes} bytes, it has {}",
            io.len()
        )));
    }
    Ok(())
}

fn key_of(key: &[u8]) -> Option<&[u8]> {
    (!key.is_empty()).then_some(key)
}

/// A new fusion sender (one template copy); returns its id.
#[napi(js_name = "fusionSenderNew", catch_unwind)]
pub fn fusion_sender_new() -> u32 {
    SENDERS.with(|s| {
        let mut slab = s.borrow_mut();
        if let Some(id) = slab.free.pop() {
            slab.items[id as usize] = Some(FusionSender::new());
            id
        } else {
            slab.items.push(Some(FusionSender::new()));
            (slab.items.len() - 1) as u32
        }
    })
}

/// Frees sender `id` (unknown or freed ids are ignored).
#[napi(js_name = "fusionSenderFree", catch_unwind)]
pub fn fusion_sender_free(id: u32) {
    SENDERS.with(|s| {
        let mut slab = s.borrow_mut();
        if let Some(slot) = slab.items.get_mut(id as usize) {
            if slot.take().is_some() {
                slab.free.push(id);
            }
        }
    });
}

/// Loads (or with tid `NONE` unloads) the template of sender `id`; the layout
/// of `io` is `opensynaptic_contract::sender_load`.
#[napi(js_name = "fusionSenderLoad", catch_unwind)]
pub fn fusion_sender_load(io: &[u8]) -> Result<()> {
    let head = 4 * load::VALUE_LENGTHS as usize;
    need(io, head)?;
    let id = word(io, load::ID);
    let tid = word(io, load::TID);
    if tid == NONE {
        return with_sender(id, |s| {
            s.unload();
            Ok(())
        });
    }
    let tid = u8::try_from(tid).map_err(|_| arg_error(format_args!("tid {tid} is not a byte")))?;
    let sig_len = word(io, load::SIG_LENGTH) as usize;
    let count = word(io, load::VALUE_COUNT);
    let words = if count == NONE { 0 } else { count as usize };
    need(io, head + 4 * words)?;
    let mut at = head + 4 * words;
    let len_word = |i: usize| word(io, load::VALUE_LENGTHS + i as u32) as usize;
    let total = (0..words).map(len_word).sum::<usize>() + sig_len;
    need(io, at + total)?;
    let sig = &io[at..at + sig_len];
    at += sig_len;
    let mut values = Vec::with_capacity(words);
    for i in 0..words {
        let len = len_word(i);
        values.push(&io[at..at + len]);
        at += len;
    }
    with_sender(id, |s| {
        s.load(tid, sig, (count != NONE).then_some(values));
        Ok(())
    })
}

fn put_entry(buf: &mut [u8], at: usize, index: usize, r: Range<usize>) {
    buf[at..at + 4].copy_from_slice(&(index as u32).to_ne_bytes());
    buf[at + 4..at + 8].copy_from_slice(&(r.start as u32).to_ne_bytes());
    buf[at + 8..at + 12].copy_from_slice(&(r.end as u32).to_ne_bytes());
}

/// The DIFF / HEART frames of `bodies[offsets[i]..offsets[i + 1]]` from body
/// `START` on, from sender `ID`'s template, back to back into `out` (which
/// needs `16 + length` bytes per body), `frameEnds[i + 1]` = end of frame i.
/// Stops at the first body that falls back (`NEXT`, `FALLBACK`); see
/// `opensynaptic_contract::send_batch`. Returns the number of frames written.
#[napi(js_name = "fusionSendBatch", catch_unwind)]
pub fn fusion_send_batch(
    mut io: Uint8ArraySlice,
    bodies: &[u8],
    offsets: &[u32],
    mut out: Uint8ArraySlice,
    mut frame_ends: Uint32ArraySlice,
) -> Result<u32> {
    check_disjoint(bodies, "bodies", &io, "io")?;
    check_disjoint(offsets, "offsets", &io, "io")?;
    check_disjoint(bodies, "bodies", &out, "out")?;
    check_disjoint(offsets, "offsets", &out, "out")?;
    check_disjoint(bodies, "bodies", &frame_ends, "frameEnds")?;
    check_disjoint(offsets, "offsets", &frame_ends, "frameEnds")?;
    check_disjoint(&io, "io", &out, "out")?;
    check_disjoint(&io, "io", &frame_ends, "frameEnds")?;
    check_disjoint(&out, "out", &frame_ends, "frameEnds")?;
    // SAFETY: the three outputs are disjoint from each other and from the
    // inputs (checked above), JS is suspended for this synchronous call, and
    // the borrows end before it returns.
    let io = unsafe { io.as_mut() };
    let out = unsafe { out.as_mut() };
    let frame_ends = unsafe { frame_ends.as_mut() };
    need(io, CTRL)?;
    let id = word(io, w::ID);
    let aid = word(io, w::AID);
    let key_len = word(io, w::KEY_LENGTH) as usize;
    let start = word(io, w::START) as usize;
    let out_pos = word(io, w::OUT_POSITION) as usize;
    need(io, CTRL + key_len)?;
    let ranges: Vec<Range<usize>> = checked_ranges(bodies.len(), offsets)?.collect();
    let count = ranges.len();
    if frame_ends.len() < count + 1 {
        return Err(arg_error(format_args!(
            "frameEnds must hold {} entries, it has {}",
            count + 1,
            frame_ends.len()
        )));
    }
    if start > count || out_pos > out.len() {
        return Err(arg_error(format_args!(
            "start {start} / out position {out_pos} out of range"
        )));
    }
    let room: usize = ranges[start..].iter().map(|r| r.len() + 16).sum();
    if out.len() - out_pos < room {
        return Err(arg_error(format_args!(
            "out must hold {} bytes from {out_pos}, it has {}",
            room,
            out.len() - out_pos
        )));
    }
    let (head, tail) = io.split_at_mut(CTRL + key_len);
    let (ctrl, key) = head.split_at_mut(CTRL);
    let key = key_of(key);
    let mut touched = Vec::new();
    with_sender(id, |s| {
        let run = s
            .send_batch(
                bodies,
                &ranges,
                start,
                aid,
                key,
                out,
                out_pos,
                &mut frame_ends[1..],
                &mut touched,
            )
            .map_err(frame_error)?;
        let list_off = align4(CTRL + key_len);
        let list_rel = list_off - (CTRL + key_len);
        let n_touched = touched.iter().filter(|t| t.is_some()).count();
        if tail.len() < list_rel + ENTRY * n_touched {
            return Err(arg_error(format_args!(
                "io must hold {} bytes, it has {}",
                list_off + ENTRY * n_touched,
                CTRL + key_len + tail.len()
            )));
        }
        let mut k = 0;
        for (v, t) in touched.iter().enumerate() {
            if let Some(r) = t {
                put_entry(tail, list_rel + ENTRY * k, v, r.clone());
                k += 1;
            }
        }
        set_usize(ctrl, w::NEXT, run.next)?;
        set_usize(ctrl, w::OUT_END, run.out_len)?;
        set_word(
            ctrl,
            w::FALLBACK,
            run.stop.map_or(fallback::NONE, fallback_code),
        );
        set_usize(ctrl, w::FRAMES, run.frames)?;
        set_usize(ctrl, w::TOUCHED_COUNT, n_touched)?;
        set_usize(ctrl, w::TOUCHED_OFFSET, list_off)?;
        u32::try_from(run.frames).map_err(|_| arg_error("too many frames"))
    })
}
