//! Base62 text decoders on any UTF-8 text, and encode/decode round trips of any i64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opensynaptic_core::base62::{decode_f64, decode_fixed, decode_i64, encode_i64, Base62Error};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 9 {
        let n = i64::from_le_bytes(data[..8].try_into().unwrap());
        assert_eq!(decode_i64(&encode_i64(n)), Ok(n));
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let precision = u32::from(data.first().copied().unwrap_or(0) % 24);
    match decode_i64(s) {
        Ok(n) => {
            // Canonical text decodes to the same number (leading zeros aside).
            assert_eq!(decode_i64(&encode_i64(n)), Ok(n));
            assert_eq!(decode_f64(s), Ok(n as f64));
            match decode_fixed(s, precision) {
                Ok(x) => assert!(x.is_finite()),
                Err(e) => assert!(matches!(e, Base62Error::PrecisionOutOfRange { .. })),
            }
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(decode_f64(s).is_err());
            if let Base62Error::Invalid { position, found } = e {
                assert!(position <= s.chars().count());
                if let Some(c) = found {
                    assert_eq!(s.chars().nth(position), Some(c));
                }
            }
        }
    }
});
