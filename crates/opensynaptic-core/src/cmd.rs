//! Data command bytes (frozen by the protocol) and their plain/secure pairing.
//! The numbers are `opensynaptic_contract::wire`'s, the ones the packages use.

use opensynaptic_contract::wire;

/// A contract number that must be a byte.
const fn byte(v: u64) -> u8 {
    assert!(v <= u8::MAX as u64);
    v as u8
}

pub const DATA_FULL: u8 = byte(wire::DATA_FULL);
pub const DATA_FULL_SEC: u8 = byte(wire::DATA_FULL_SEC);
pub const DATA_DIFF: u8 = byte(wire::DATA_DIFF);
pub const DATA_DIFF_SEC: u8 = byte(wire::DATA_DIFF_SEC);
pub const DATA_HEART: u8 = byte(wire::DATA_HEART);
pub const DATA_HEART_SEC: u8 = byte(wire::DATA_HEART_SEC);

/// One of the six data commands, plain or secure.
pub const fn is_data(cmd: u8) -> bool {
    is_plain_data(cmd) || is_secure_data(cmd)
}

/// FULL, DIFF or HEART without the secure flag.
pub const fn is_plain_data(cmd: u8) -> bool {
    matches!(cmd, DATA_FULL | DATA_DIFF | DATA_HEART)
}

/// The secure (XOR-obfuscated body) variant of a data command.
pub const fn is_secure_data(cmd: u8) -> bool {
    matches!(cmd, DATA_FULL_SEC | DATA_DIFF_SEC | DATA_HEART_SEC)
}

/// Secure data command to its plain counterpart; anything else unchanged.
pub const fn normalize_data(cmd: u8) -> u8 {
    match cmd {
        DATA_FULL_SEC => DATA_FULL,
        DATA_DIFF_SEC => DATA_DIFF,
        DATA_HEART_SEC => DATA_HEART,
        other => other,
    }
}

/// Plain data command to its secure counterpart; anything else unchanged.
pub const fn secure_variant(cmd: u8) -> u8 {
    match cmd {
        DATA_FULL => DATA_FULL_SEC,
        DATA_DIFF => DATA_DIFF_SEC,
        DATA_HEART => DATA_HEART_SEC,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_covers_every_byte() {
        let data: Vec<u8> = (0..=255u8).filter(|&c| is_data(c)).collect();
        assert_eq!(data, vec![63, 64, 127, 128, 170, 171]);
        for cmd in 0..=255u8 {
            if is_plain_data(cmd) {
                assert_eq!(normalize_data(secure_variant(cmd)), cmd);
                assert!(is_secure_data(secure_variant(cmd)));
                assert_eq!(normalize_data(cmd), cmd);
            } else if is_secure_data(cmd) {
                assert_eq!(secure_variant(normalize_data(cmd)), cmd);
                assert_eq!(secure_variant(cmd), cmd);
            } else {
                assert_eq!(normalize_data(cmd), cmd);
                assert_eq!(secure_variant(cmd), cmd);
            }
        }
    }
}
