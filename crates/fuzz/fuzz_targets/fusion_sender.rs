//! The DIFF/HEART steady state end to end: the first text (up to a NUL byte) is the learned
//! template, the second is sent against it. A sent frame must decode, its DIFF body must apply,
//! and the receiver's rebuilt values must equal the second text's values; a refused text must
//! leave the template as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::cmd::{DATA_DIFF, DATA_HEART, normalize_data};
use opensynaptic_core::frame::decode_frame;
use opensynaptic_core::fusion::{apply_diff, decompose, FusionSender};
use opensynaptic_core::security::derive_session_key;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|&c| c == 0) else {
        return;
    };
    let (first, second) = (&data[..split], &data[split + 1..]);
    let Ok(d1) = decompose(first) else {
        return;
    };
    let tid = first.len() as u8;
    let old: Vec<Vec<u8>> = d1.values.iter().map(|r| first[r.clone()].to_vec()).collect();
    let mut sender = FusionSender::new();
    sender.load(tid, &d1.sig, Some(old.iter().map(Vec::as_slice)));
    let key = derive_session_key(7, 1_700_000_000_000);
    let key = (second.len() % 2 == 1).then_some(&key[..]);
    let mut out = vec![0u8; 64 + 2 * second.len()];
    match sender.send(second, 7, key, &mut out) {
        Ok(sent) => {
            let frame = &out[..sent.frame_len];
            let mut plain = Vec::new();
            let h = decode_frame(frame, key, &mut plain).expect("a sent frame decodes");
            assert_eq!((h.tid, h.source_aid, h.timestamp), (tid, 7, sent.timestamp));
            let body = if h.secure { &plain[..] } else { &frame[h.body_offset..h.body_offset + h.body_len] };
            let d2 = decompose(second).expect("sent text decomposes");
            let want: Vec<&[u8]> = d2.values.iter().map(|r| &second[r.clone()]).collect();
            let mut rebuilt: Vec<&[u8]> = old.iter().map(Vec::as_slice).collect();
            match normalize_data(h.cmd) {
                DATA_HEART => assert!(body.is_empty()),
                DATA_DIFF => {
                    let mut changed = Vec::new();
                    apply_diff(body, old.len(), &mut changed).expect("a sent DIFF body applies");
                    assert!(!changed.is_empty());
                    for (i, r) in changed {
                        rebuilt[i] = &body[r];
                    }
                }
                c => panic!("sender sent cmd {c}"),
            }
            assert_eq!(rebuilt, want, "receiver rebuilds other values than were sent");
            let t = sender.template().unwrap();
            assert_eq!(t.values.unwrap().iter().map(Vec::as_slice).collect::<Vec<_>>(), want);
        }
        Err(_) => {
            let t = sender.template().unwrap();
            assert_eq!(t.sig, &d1.sig[..]);
            assert_eq!(t.values.unwrap(), &old[..]);
        }
    }
});
