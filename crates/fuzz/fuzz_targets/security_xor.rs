//! Body XOR: its own inverse for any key and offset, the in-place and allocating forms agree,
//! an empty key copies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::security::{xor_payload, xor_payload_into};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let key_len = usize::from(head & 63).min(rest.len());
    let (key, payload) = rest.split_at(key_len);
    let offset = u32::from(head) * 0x0101_0101;
    let once = xor_payload(payload, key, offset);
    let mut into = vec![0u8; payload.len() + 3];
    xor_payload_into(payload, key, offset, &mut into);
    assert_eq!(&into[..payload.len()], &once[..]);
    assert_eq!(xor_payload(&once, key, offset), payload);
    if key.is_empty() {
        assert_eq!(once, payload);
    }
});
