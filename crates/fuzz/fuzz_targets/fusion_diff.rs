//! DIFF body reading for a template of any value count: on success the changed values written
//! back with `encode_diff_body` give the body's bytes again (ignored mask bits cleared).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::fusion::{apply_diff, encode_diff_body, mask_len, DiffBody, DiffError};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let count = usize::from(u16::from_le_bytes([data[0], data[1]]) % 2048);
    let body = &data[2..];
    let mut changed = Vec::new();
    match apply_diff(body, count, &mut changed) {
        Ok(()) => {
            let ml = mask_len(count);
            let mut new = vec![Vec::new(); count];
            let mut old = vec![Vec::new(); count];
            let mut end = ml;
            let mut prev = None;
            for (i, r) in &changed {
                assert!(prev < Some(*i) && *i < count);
                prev = Some(*i);
                assert_eq!(r.start, end + 1);
                assert_eq!(usize::from(body[end]), r.len());
                new[*i] = body[r.clone()].to_vec();
                old[*i] = vec![0xff; r.len() + 1];
                end = r.end;
            }
            let mut want = body[..end].to_vec();
            // Mask bits past `count` are ignored on reading.
            for b in 0..ml * 8 {
                if b >= count {
                    want[ml - 1 - (b >> 3)] &= !(1 << (b & 7));
                }
            }
            let mut out = Vec::new();
            match encode_diff_body(&old, &new, &mut out) {
                DiffBody::Heart => {
                    assert!(changed.is_empty());
                    assert!(want.iter().all(|&b| b == 0));
                }
                DiffBody::Diff { changed: c } => {
                    assert_eq!(c, changed.len());
                    assert_eq!(out, want);
                }
                DiffBody::ValueTooLong { .. } => panic!("a value read from a length byte is too long"),
            }
        }
        Err(e) => {
            let _ = e.to_string();
            match e {
                DiffError::MaskCutShort { len, .. } => assert!(len < mask_len(count)),
                DiffError::MaskPastEnd { index, len } => assert!(index < count && len == body.len()),
                DiffError::ValueOverrun { index, claimed, remain } => {
                    assert!(index < count && claimed > remain)
                }
            }
        }
    }
});
