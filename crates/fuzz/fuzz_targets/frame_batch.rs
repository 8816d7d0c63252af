//! A batch buffer as the addon's `decodeFrames` sees it: the first byte is the frame count n,
//! then n little-endian u16 lengths, then the frames back to back (lengths are clamped to the
//! bytes left). Each frame's keyless check must agree with the single-frame decoder, and frames
//! must not influence one another.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::frame::{decode_frame, decode_frame_no_key, FrameErrorKind};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32);
    if rest.len() < 2 * n {
        return;
    }
    let (lens, mut buf) = rest.split_at(2 * n);
    let mut frames = Vec::with_capacity(n);
    for c in lens.chunks_exact(2) {
        let len = usize::from(u16::from_le_bytes([c[0], c[1]])).min(buf.len());
        let (f, tail) = buf.split_at(len);
        frames.push(f);
        buf = tail;
    }
    let batch: Vec<_> = frames.iter().map(|f| decode_frame_no_key(f)).collect();
    let mut plain = Vec::new();
    for (f, got) in frames.iter().zip(&batch) {
        match (decode_frame(f, None, &mut plain), got) {
            (Ok(h), Ok(g)) => assert_eq!(h, *g),
            (Err(e), Ok(g)) => {
                assert!(g.secure, "only secure frames pass the keyless check alone");
                assert!(matches!(e.kind, FrameErrorKind::MissingSecureKey { .. }));
            }
            (Err(e), Err(g)) => assert_eq!(e, *g),
            (Ok(_), Err(g)) => panic!("single decode accepts what the batch check refused: {g}"),
        }
    }
    // Decoding in reverse order gives the same answers (no state between frames).
    for (f, got) in frames.iter().zip(&batch).rev() {
        assert_eq!(decode_frame_no_key(f), *got);
    }
});
