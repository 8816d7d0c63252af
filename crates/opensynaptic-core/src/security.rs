//! Body obfuscation and session-key derivation for "secure" data frames.
//!
//! This is obfuscation, not cryptography: the key is derived from values that
//! travel in clear in the first plain FULL frame.

use sha2::{Digest, Sha256};

/// XORs `payload` into `out[..payload.len()]`:
/// `out[i] = payload[i] ^ key[(i + off) % key.len()] ^ off` with `off = offset & 31`.
///
/// An empty key copies the payload unchanged (the offset is not applied either).
/// The transform is its own inverse.
///
/// # Panics
/// If `out` is shorter than `payload`.
pub fn xor_payload_into(payload: &[u8], key: &[u8], offset: u32, out: &mut [u8]) {
    let out = &mut out[..payload.len()];
    if key.is_empty() {
        out.copy_from_slice(payload);
        return;
    }
    let off = (offset & 31) as usize;
    let off_byte = off as u8;
    // Walk the key cyclically instead of taking a modulo per byte.
    let mut k = off % key.len();
    for (o, &p) in out.iter_mut().zip(payload) {
        *o = p ^ key[k] ^ off_byte;
        k += 1;
        if k == key.len() {
            k = 0;
        }
    }
}

/// Allocating form of [`xor_payload_into`].
pub fn xor_payload(payload: &[u8], key: &[u8], offset: u32) -> Vec<u8> {
    let mut out = vec![0u8; payload.len()];
    xor_payload_into(payload, key, offset, &mut out);
    out
}

/// Session key: SHA-256 of the ASCII decimal of `aid * ts` modulo 2^64.
///
/// Callers normalise their inputs first: the reference clamps negative values
/// to 0 and reduces values of 2^64 or more modulo 2^64.
pub fn derive_session_key(aid: u64, ts: u64) -> [u8; 32] {
    let seed = aid.wrapping_mul(ts);
    let mut digits = [0u8; 20];
    let mut pos = digits.len();
    let mut v = seed;
    loop {
        pos -= 1;
        digits[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    Sha256::digest(&digits[pos..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_an_involution() {
        let key: Vec<u8> = (1..=32).collect();
        let payload = b"42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|";
        for offset in [0, 1, 31, 32, 255, u32::MAX] {
            let once = xor_payload(payload, &key, offset);
            assert_eq!(xor_payload(&once, &key, offset), payload.to_vec());
        }
    }

    #[test]
    fn empty_key_copies() {
        assert_eq!(xor_payload(b"abc", b"", 7), b"abc".to_vec());
        assert_eq!(xor_payload(b"", b"k", 7), Vec::<u8>::new());
    }

    #[test]
    fn short_key_cycles_from_the_offset() {
        // key "k" (0x6b), off 31: 'h' ^ 0x6b ^ 0x1f = 0x1c
        assert_eq!(
            xor_payload(b"hello", b"k", 31),
            vec![0x1c, 0x11, 0x18, 0x18, 0x1b]
        );
    }

    #[test]
    fn session_key_hashes_the_decimal_product() {
        let hex = |k: [u8; 32]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(derive_session_key(42, 1_700_000_000_000)),
            "c447eb9640f3f2767db9393d60f2bd2e7af4571996ba5b52d2c86732f82d45cf"
        );
        // sha256("0")
        assert_eq!(
            hex(derive_session_key(0, 5)),
            "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"
        );
        assert_eq!(
            derive_session_key(u64::MAX, 1),
            derive_session_key(1, u64::MAX)
        );
    }
}
