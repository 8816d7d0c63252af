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
//! Layout of `io` (word = 4 bytes, `CTRL` = 128 bytes of words):
//!
//! * `fusionSend`: in w0 sender id, w1 route (aid), w2 text length, w3 key
//!   length; text at `CTRL`, key right after. Out w4 cmd, w5 tid, w6 frame
//!   offset, w7 frame length, w8 plain body offset, w9 body length, w10
//!   changed count, w11 offset of the changed list (`index, start, end` per
//!   changed value, offsets into the text), w12/w13 timestamp high 16 / low 32
//!   bits. Returns 0 (frame built) or a fallback code (1..7, nothing changed).
//! * `fusionSenderLoad`: w0 id, w1 tid (`NONE` unloads), w2 signature
//!   length, w3 value count (`NONE`: no values), then one length word per
//!   value; the bytes (signature, then the values) follow the words.
//! * `fusionSendBatch`: in w0 id, w1 aid, w2 key length (key at `CTRL`), w3
//!   first body, w4 where in `out` to write. Out w5 next body (the one that
//!   fell back, or the count), w6 end of the frames in `out`, w7 fallback
//!   code (0: done), w8 frames written, w9 touched count, w10 offset of the
//!   touched list (`index, start, end` per value the run changed, where its
//!   final text sits in `bodies`).
//! * `fusionReceive`: in w0 key length (key at `CTRL`), w1 the value count to
//!   read a DIFF body for (`NONE`: don't). Returns the `decodeFrame` status;
//!   on 0: w2 cmd, w3 route count, w4 source aid, w5 tid, w6/w7 timestamp
//!   high/low, w8 body offset, w9 body length, w10 crc8, w11 crc16, w12 plain
//!   body offset in `io` (secure frames; 0 otherwise), w13 DIFF status (0 not
//!   read, 1 ok, 2 mask cut short, 3 mask past end, 4 value overrun), w14..16
//!   its numbers, w17 changed count, w18 offset of the changed list (`index,
//!   start, end` into the body; after an error, the values read before it).

use std::cell::RefCell;
use std::ops::Range;

use napi::bindgen_prelude::{Uint32ArraySlice, Uint8ArraySlice};
use napi::Result;
use napi_derive::napi;
use opensynaptic_core::fusion::FusionSender;

use crate::{arg_error, check_disjoint, checked_ranges, frame_error};

/// Bytes of control words at the start of `io`.
const CTRL: usize = 128;
/// "No value" in a control word.
const NONE: u32 = u32::MAX;

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
            _ => Err(arg_error(format_args!("no fusion sender {id}"))),
        }
    })
}

fn word(io: &[u8], w: usize) -> u32 {
    u32::from_ne_bytes([io[4 * w], io[4 * w + 1], io[4 * w + 2], io[4 * w + 3]])
}

fn set_word(io: &mut [u8], w: usize, v: u32) {
    io[4 * w..4 * w + 4].copy_from_slice(&v.to_ne_bytes());
}

fn set_usize(io: &mut [u8], w: usize, v: usize) -> Result<()> {
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

/// Loads (or with tid `NONE` unloads) the template of sender `id`; see the
/// module docs for the layout of `io`.
#[napi(js_name = "fusionSenderLoad", catch_unwind)]
pub fn fusion_sender_load(io: &[u8]) -> Result<()> {
    need(io, 16)?;
    let id = word(io, 0);
    let tid = word(io, 1);
    if tid == NONE {
        return with_sender(id, |s| {
            s.unload();
            Ok(())
        });
    }
    let tid = u8::try_from(tid).map_err(|_| arg_error(format_args!("tid {tid} is not a byte")))?;
    let sig_len = word(io, 2) as usize;
    let count = word(io, 3);
    let words = if count == NONE { 0 } else { count as usize };
    need(io, 16 + 4 * words)?;
    let mut at = 16 + 4 * words;
    let total = (0..words).map(|i| word(io, 4 + i) as usize).sum::<usize>() + sig_len;
    need(io, at + total)?;
    let sig = &io[at..at + sig_len];
    at += sig_len;
    let mut values = Vec::with_capacity(words);
    for i in 0..words {
        let len = word(io, 4 + i) as usize;
        values.push(&io[at..at + len]);
        at += len;
    }
    with_sender(id, |s| {
        s.load(tid, sig, (count != NONE).then_some(values));
        Ok(())
    })
}

fn put_triple(buf: &mut [u8], at: usize, index: usize, r: Range<usize>) {
    buf[at..at + 4].copy_from_slice(&(index as u32).to_ne_bytes());
    buf[at + 4..at + 8].copy_from_slice(&(r.start as u32).to_ne_bytes());
    buf[at + 8..at + 12].copy_from_slice(&(r.end as u32).to_ne_bytes());
}

/// `fusionSend` over `bodies[offsets[i]..offsets[i + 1]]` from body w3 on,
/// frames back to back into `out` (which needs `16 + length` bytes per body)
/// and `frameEnds[i + 1]` = end of frame i. Stops at the first body that
/// falls back (w5, w7); see the module docs. Returns the number of frames
/// written.
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
    let id = word(io, 0);
    let aid = word(io, 1);
    let key_len = word(io, 2) as usize;
    let start = word(io, 3) as usize;
    let out_pos = word(io, 4) as usize;
    need(io, CTRL + key_len)?;
    let ranges: Vec<Range<usize>> = checked_ranges("offsets", bodies.len(), offsets)?.collect();
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
        if tail.len() < list_rel + 12 * n_touched {
            return Err(arg_error(format_args!(
                "io must hold {} bytes, it has {}",
                list_off + 12 * n_touched,
                CTRL + key_len + tail.len()
            )));
        }
        let mut k = 0;
        for (v, t) in touched.iter().enumerate() {
            if let Some(r) = t {
                put_triple(tail, list_rel + 12 * k, v, r.clone());
                k += 1;
            }
        }
        set_usize(ctrl, 5, run.next)?;
        set_usize(ctrl, 6, run.out_len)?;
        set_word(ctrl, 7, run.stop.map_or(0, |w| w.code()));
        set_usize(ctrl, 8, run.frames)?;
        set_usize(ctrl, 9, n_touched)?;
        set_usize(ctrl, 10, list_off)?;
        u32::try_from(run.frames).map_err(|_| arg_error("too many frames"))
    })
}

