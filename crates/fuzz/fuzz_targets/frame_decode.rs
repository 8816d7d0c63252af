//! Any bytes as one data frame, with no key and with a session key. Checks that the three
//! decoders agree, that header fields describe the frame exactly, and that an accepted frame
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::frame::{
    decode_frame, decode_frame_into, decode_frame_no_key, encode_frame, encoded_len, FrameErrorKind,
    FrameHeader,
};
use opensynaptic_core::security::derive_session_key;

fn routes_of(frame: &[u8], h: &FrameHeader) -> Vec<u32> {
    frame[2..2 + 4 * h.route_count as usize]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn check(frame: &[u8], key: Option<&[u8]>) {
    let mut plain = Vec::new();
    let res = decode_frame(frame, key, &mut plain);
    // The non-allocating form gives the same answer with a buffer of the frame's size.
    let mut buf = vec![0u8; frame.len()];
    let res_into = decode_frame_into(frame, key, &mut buf);
    assert_eq!(res, res_into);
    match res {
        Ok(h) => {
            assert_eq!(h.body_offset, 9 + 4 * h.route_count as usize);
            assert_eq!(encoded_len(h.route_count as usize, h.body_len), frame.len());
            let body: &[u8] = if h.secure {
                assert_eq!(plain.len(), h.body_len);
                assert_eq!(&buf[..h.body_len], &plain[..]);
                &plain
            } else {
                assert!(plain.is_empty());
                &frame[h.body_offset..h.body_offset + h.body_len]
            };
            let routes = routes_of(frame, &h);
            assert_eq!(h.source_aid, routes.last().copied().unwrap_or(0));
            let again = encode_frame(
                h.cmd,
                &routes,
                h.tid,
                h.timestamp,
                body,
                if h.secure { key } else { None },
            )
            .expect("an accepted frame re-encodes");
            assert_eq!(again, frame, "decode then encode is not the identity");
            // Without a key a plain frame passes the keyless check too.
            if !h.secure {
                assert_eq!(decode_frame_no_key(frame), Ok(h));
            }
            // A secure frame with a buffer one byte short is refused, not cut.
            if h.secure && h.body_len > 0 {
                let mut short = vec![0u8; h.body_len - 1];
                let e = decode_frame_into(frame, key, &mut short).unwrap_err();
                assert!(matches!(e.kind, FrameErrorKind::BufferTooSmall { .. }));
            }
        }
        Err(e) => {
            assert!(plain.is_empty());
            let _ = e.to_string();
            if let FrameErrorKind::MissingSecureKey { .. } = e.kind {
                assert!(key.is_none_or(|k| k.is_empty()));
                assert!(decode_frame_no_key(frame).is_ok());
            }
        }
    }
}

fuzz_target!(|frame: &[u8]| {
    check(frame, None);
    // The key a device gets for aid 42 and the timestamp; any key exercises the XOR path.
    let key = derive_session_key(42, 0x018b_cfe5_6800);
    check(frame, Some(&key));
    check(frame, Some(&[]));
});
