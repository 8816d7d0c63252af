//! Body text → signature, values and timestamp token. Checks every range, and that the pieces
//! put back together give the text again (as `rebuild` of @opensynaptic/fusion does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::fusion::{decode_timestamp_token, decompose, decompose_into, Decomposed, VALUE_MARK};

fn rebuild(text: &[u8], d: &Decomposed) -> Vec<u8> {
    let header = d.sig.windows(6).position(|w| w == b".{TS}|").expect("signature header");
    let mut out = d.sig[..header].to_vec();
    out.push(b'.');
    out.extend_from_slice(&text[d.token.clone()]);
    out.push(b'|');
    let mut values = d.values.iter();
    for &c in &d.sig[header + 6..] {
        if c == VALUE_MARK {
            out.extend_from_slice(&text[values.next().expect("a value per mark").clone()]);
        } else {
            out.push(c);
        }
    }
    assert!(values.next().is_none());
    out
}

fuzz_target!(|text: &[u8]| {
    let mut reused = Decomposed::default();
    // Leftovers from an earlier call must not leak into the next one.
    let _ = decompose_into(b"X.Y.AAAAAAAA|S>a:b|T>c:d|", &mut reused);
    let res = decompose_into(text, &mut reused);
    let fresh = decompose(text);
    match (&res, &fresh) {
        (Ok(()), Ok(d)) => {
            assert_eq!(reused.sig, d.sig);
            assert_eq!(reused.values, d.values);
            assert_eq!(reused.token, d.token);
            assert_eq!(d.values.len() % 2, 0);
            let mut last = d.token.end;
            for r in &d.values {
                assert!(r.start <= r.end && r.end <= text.len() && r.start >= last);
                last = r.end;
            }
            assert!(d.token.end <= text.len());
            assert!(!text[d.token.clone()].contains(&b'|'));
            if let Some(ts) = decode_timestamp_token(&text[d.token.clone()]) {
                assert!(ts < 1 << 48);
            }
            if !text.contains(&VALUE_MARK) {
                // The text after its first ';', empty segments dropped, each segment closed by '|'.
                let start = text.iter().position(|&c| c == b';').map_or(0, |i| i + 1);
                let mut want = Vec::new();
                let bar = d.token.end;
                want.extend_from_slice(&text[start..=bar]);
                for seg in text[bar + 1..].split(|&c| c == b'|').filter(|s| !s.is_empty()) {
                    want.extend_from_slice(seg);
                    want.push(b'|');
                }
                assert_eq!(rebuild(text, d), want);
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            let _ = a.to_string();
        }
        _ => panic!("decompose and decompose_into disagree"),
    }
});
