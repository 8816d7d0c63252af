//! Base62 codec for integers and fixed-point numbers.
//!
//! Alphabet `0-9a-zA-Z` (digit values 0..61); a leading `-` for negatives, then
//! the most significant digit first. Zero is `"0"`.
//!
//! Fixed-point encoding reproduces the reference byte for byte: the scaled value
//! is the binary product `x * 10^p` rounded half-to-even. Values whose scaled
//! integer does not fit in an `i64` are rejected instead of wrapping around.

use std::fmt;

/// Digit characters, indexed by digit value.
pub const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Largest precision accepted by the fixed-point functions (10^308 is the
/// largest finite power of ten in an `f64`).
pub const MAX_PRECISION: u32 = 308;

/// Longest possible encoding of an `i64`: a sign and 11 digits.
pub const MAX_ENCODED_LEN: usize = 12;

const INVALID: u8 = 0xFF;

const DECODE_TABLE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Every power of ten up to 10^22 is exactly representable as an `f64`.
const POW10_EXACT: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// 2^63 as a float: the first value past the top of the `i64` range.
const TWO_POW_63: f64 = (1u64 << 63) as f64;

/// Integers up to this magnitude convert to `f64` without rounding.
const MAX_EXACT_INT: u64 = 1 << 53;

/// Why a Base62 conversion failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base62Error {
    /// The text is not an optional `-` followed by one or more Base62 digits.
    /// `position` counts characters (not bytes) from the start; `found` is the
    /// offending character, or `None` when the text ended too early.
    Invalid {
        position: usize,
        found: Option<char>,
    },
    /// The value does not fit in a signed 64-bit integer.
    OutOfRange,
    /// NaN or an infinity was given where a finite number is required.
    NotFinite,
    /// The requested precision exceeds [`MAX_PRECISION`].
    PrecisionOutOfRange { precision: u32 },
}

impl fmt::Display for Base62Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Base62Error::Invalid {
                position,
                found: Some(c),
            } => write!(
                f,
                "invalid Base62 character '{}' at position {}",
                c.escape_debug(),
                position
            ),
            Base62Error::Invalid {
                position: 0,
                found: None,
            } => f.write_str("invalid Base62 text: the text is empty"),
            Base62Error::Invalid {
                position,
                found: None,
            } => write!(
                f,
                "invalid Base62 text: expected a digit at position {position}, found the end of the text"
            ),
            Base62Error::OutOfRange => {
                f.write_str("value is outside the signed 64-bit integer range")
            }
            Base62Error::NotFinite => f.write_str("cannot encode NaN or an infinite number"),
            Base62Error::PrecisionOutOfRange { precision } => write!(
                f,
                "precision {precision} is outside the supported range 0..={MAX_PRECISION}"
            ),
        }
    }
}

impl std::error::Error for Base62Error {}

/// Encodes an integer exactly. `i64::MIN` gives `"-aZl8N0y58M8"`.
pub fn encode_i64(n: i64) -> String {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let start = encode_i64_to_buf(n, &mut buf);
    // The buffer holds only ASCII from ALPHABET and '-'.
    buf[start..].iter().map(|&b| b as char).collect()
}

/// Writes the encoding right-aligned into `buf` and returns its start index.
fn encode_i64_to_buf(n: i64, buf: &mut [u8; MAX_ENCODED_LEN]) -> usize {
    let mut magnitude = n.unsigned_abs();
    let mut pos = MAX_ENCODED_LEN;
    loop {
        pos -= 1;
        buf[pos] = ALPHABET[(magnitude % 62) as usize];
        magnitude /= 62;
        if magnitude == 0 {
            break;
        }
    }
    if n < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    pos
}

/// Converts an already-integral float to `i64`, rejecting anything outside
/// `[-2^63, 2^63)`.
fn integral_to_i64(v: f64) -> Result<i64, Base62Error> {
    if (-TWO_POW_63..TWO_POW_63).contains(&v) {
        // In range and integral, so the cast is exact.
        Ok(v as i64)
    } else {
        Err(Base62Error::OutOfRange)
    }
}

/// Encodes `x` truncated toward zero (the reference's "no precision" path, used
/// for unit coefficients and route ids).
pub fn encode_trunc(x: f64) -> Result<String, Base62Error> {
    if !x.is_finite() {
        return Err(Base62Error::NotFinite);
    }
    integral_to_i64(x.trunc()).map(encode_i64)
}

/// `10^p` as the correctly rounded double (exact for p <= 22), which is what a
/// float times a Python integer power of ten uses.
fn pow10(precision: u32) -> Result<f64, Base62Error> {
    if precision > MAX_PRECISION {
        return Err(Base62Error::PrecisionOutOfRange { precision });
    }
    Ok(match POW10_EXACT.get(precision as usize) {
        Some(&p) => p,
        // Parsing is correctly rounded, like Python's int-to-float conversion.
        None => format!("1e{precision}")
            .parse::<f64>()
            .unwrap_or(f64::INFINITY),
    })
}

/// The scaled integer that [`encode_fixed`] encodes: `x * 10^p` as one binary
/// multiplication, rounded half-to-even.
pub fn scale_fixed(x: f64, precision: u32) -> Result<i64, Base62Error> {
    let factor = pow10(precision)?;
    if !x.is_finite() {
        return Err(Base62Error::NotFinite);
    }
    let scaled = x * factor;
    if !scaled.is_finite() {
        return Err(Base62Error::OutOfRange);
    }
    integral_to_i64(scaled.round_ties_even())
}

/// Encodes `x` with `precision` decimal places.
///
/// Ties are broken to even on the binary product, not on the decimal text:
/// `1.23445` at p=4 gives 12344 and `0.00015` gives 1 because its product is
/// 1.4999999999999998.
pub fn encode_fixed(x: f64, precision: u32) -> Result<String, Base62Error> {
    scale_fixed(x, precision).map(encode_i64)
}

/// Decodes Base62 text to an integer.
///
/// Accepts an optional single leading `-` and at least one digit. A magnitude
/// beyond the `i64` range is an error (the reference wraps it around silently).
pub fn decode_i64(s: &str) -> Result<i64, Base62Error> {
    let bytes = s.as_bytes();
    let negative = bytes.first() == Some(&b'-');
    let digits_start = usize::from(negative);
    if bytes.len() == digits_start {
        return Err(Base62Error::Invalid {
            position: digits_start,
            found: None,
        });
    }
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    for (i, &b) in bytes.iter().enumerate().skip(digits_start) {
        let digit = DECODE_TABLE[b as usize];
        if digit == INVALID {
            return Err(invalid_at(s, i));
        }
        // Keep scanning after an overflow so a bad character later in the text
        // is still reported as such.
        if !overflow {
            match magnitude
                .checked_mul(62)
                .and_then(|m| m.checked_add(u64::from(digit)))
            {
                Some(m) => magnitude = m,
                None => overflow = true,
            }
        }
    }
    if overflow {
        return Err(Base62Error::OutOfRange);
    }
    if negative {
        if magnitude <= i64::MIN.unsigned_abs() {
            Ok(0i64.wrapping_sub_unsigned(magnitude))
        } else {
            Err(Base62Error::OutOfRange)
        }
    } else {
        i64::try_from(magnitude).map_err(|_| Base62Error::OutOfRange)
    }
}

fn invalid_at(s: &str, byte_index: usize) -> Base62Error {
    // `byte_index` may sit inside a multi-byte character; report the
    // character that contains it.
    let mut start = byte_index;
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    Base62Error::Invalid {
        position: s[..start].chars().count(),
        found: s[start..].chars().next(),
    }
}

/// Decodes Base62 text to the nearest double of the integer.
pub fn decode_f64(s: &str) -> Result<f64, Base62Error> {
    decode_i64(s).map(|i| i as f64)
}

/// `i / 10^p` as the reference computes it: the exact quotient correctly
/// rounded to a double, then rounded to 8 decimal places.
pub fn unscale_fixed(i: i64, precision: u32) -> Result<f64, Base62Error> {
    if precision > MAX_PRECISION {
        return Err(Base62Error::PrecisionOutOfRange { precision });
    }
    let p = precision as usize;
    let quotient = if i.unsigned_abs() <= MAX_EXACT_INT && p < POW10_EXACT.len() {
        // Both operands are exact, so IEEE division is correctly rounded.
        i as f64 / POW10_EXACT[p]
    } else {
        decimal_quotient(i, p)
    };
    if precision <= 8 {
        // Rounding to 8 places cannot change a quotient with at most 8 places.
        return Ok(quotient);
    }
    // Fixed-precision formatting is exact with ties to even, like Python's
    // `round(x, 8)`.
    Ok(format!("{quotient:.8}").parse::<f64>().unwrap_or(quotient))
}

/// Correctly rounded `i / 10^p` via the decimal text of the exact quotient.
fn decimal_quotient(i: i64, p: usize) -> f64 {
    let digits = i.unsigned_abs().to_string();
    let mut text = String::with_capacity(digits.len() + p + 3);
    if i < 0 {
        text.push('-');
    }
    if digits.len() > p {
        let (whole, frac) = digits.split_at(digits.len() - p);
        text.push_str(whole);
        text.push('.');
        text.push_str(frac);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', p - digits.len()));
        text.push_str(&digits);
    }
    // The text is always a well-formed decimal.
    text.parse::<f64>().unwrap_or(f64::NAN)
}

/// Decodes fixed-point Base62 text: `decode_i64(s) / 10^p`, rounded like the
/// reference (see [`unscale_fixed`]).
pub fn decode_fixed(s: &str, precision: u32) -> Result<f64, Base62Error> {
    if precision > MAX_PRECISION {
        return Err(Base62Error::PrecisionOutOfRange { precision });
    }
    unscale_fixed(decode_i64(s)?, precision)
}

/// [`encode_fixed`] over a slice; the error carries the index of the first
/// failing value.
pub fn encode_fixed_batch(
    values: &[f64],
    precision: u32,
) -> Result<Vec<String>, (usize, Base62Error)> {
    pow10(precision).map_err(|e| (0, e))?;
    values
        .iter()
        .enumerate()
        .map(|(i, &x)| encode_fixed(x, precision).map_err(|e| (i, e)))
        .collect()
}

/// [`decode_fixed`] over a slice; the error carries the index of the first
/// failing text.
pub fn decode_fixed_batch<S: AsRef<str>>(
    texts: &[S],
    precision: u32,
) -> Result<Vec<f64>, (usize, Base62Error)> {
    if precision > MAX_PRECISION {
        return Err((0, Base62Error::PrecisionOutOfRange { precision }));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, s)| decode_fixed(s.as_ref(), precision).map_err(|e| (i, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip() {
        for n in [
            0,
            1,
            -1,
            61,
            62,
            -62,
            238_327,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(decode_i64(&encode_i64(n)), Ok(n), "{n}");
        }
        assert_eq!(encode_i64(0), "0");
        assert_eq!(encode_i64(61), "Z");
        assert_eq!(encode_i64(62), "10");
        assert_eq!(encode_i64(i64::MIN), "-aZl8N0y58M8");
        assert_eq!(encode_i64(i64::MAX), "aZl8N0y58M7");
    }

    #[test]
    fn decode_rejects_malformed_text() {
        let cases: [(&str, usize, Option<char>); 9] = [
            ("", 0, None),
            ("-", 1, None),
            ("+5", 0, Some('+')),
            ("1.5", 1, Some('.')),
            ("12 3", 2, Some(' ')),
            ("--1", 1, Some('-')),
            ("ab$", 2, Some('$')),
            ("é", 0, Some('é')),
            ("1é$", 1, Some('é')),
        ];
        for (text, position, found) in cases {
            assert_eq!(
                decode_i64(text),
                Err(Base62Error::Invalid { position, found }),
                "{text:?}"
            );
        }
        assert_eq!(decode_i64("-0"), Ok(0));
        assert_eq!(decode_i64("0000001"), Ok(1));
        assert_eq!(decode_i64("-aZl8N0y58M8"), Ok(i64::MIN));
    }

    #[test]
    fn decode_rejects_overflow() {
        assert_eq!(decode_i64("aZl8N0y58M8"), Err(Base62Error::OutOfRange));
        assert_eq!(decode_i64("-aZl8N0y58M9"), Err(Base62Error::OutOfRange));
        assert_eq!(decode_i64("zzzzzzzzzzzzz"), Err(Base62Error::OutOfRange));
        // A bad character after the overflow point is still a format error.
        assert!(matches!(
            decode_i64("zzzzzzzzzzzzz$"),
            Err(Base62Error::Invalid { position: 13, .. })
        ));
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            decode_i64("ab$").unwrap_err().to_string(),
            "invalid Base62 character '$' at position 2"
        );
        assert_eq!(
            decode_i64("-").unwrap_err().to_string(),
            "invalid Base62 text: expected a digit at position 1, found the end of the text"
        );
    }

    #[test]
    fn trunc_encoding() {
        assert_eq!(encode_trunc(12.9).as_deref(), Ok("c"));
        assert_eq!(encode_trunc(-7.99).as_deref(), Ok("-7"));
        assert_eq!(encode_trunc(-0.5).as_deref(), Ok("0"));
        assert_eq!(encode_trunc(f64::NAN), Err(Base62Error::NotFinite));
        assert_eq!(encode_trunc(f64::NEG_INFINITY), Err(Base62Error::NotFinite));
        assert_eq!(encode_trunc(TWO_POW_63), Err(Base62Error::OutOfRange));
        assert_eq!(encode_trunc(-TWO_POW_63).as_deref(), Ok("-aZl8N0y58M8"));
    }

    #[test]
    fn fixed_rounds_half_even_on_the_binary_product() {
        assert_eq!(scale_fixed(1.23445, 4), Ok(12344));
        assert_eq!(scale_fixed(1.23455, 4), Ok(12346));
        assert_eq!(scale_fixed(0.00025, 4), Ok(2));
        assert_eq!(scale_fixed(0.00035, 4), Ok(4));
        assert_eq!(scale_fixed(0.00015, 4), Ok(1));
        assert_eq!(scale_fixed(0.99995, 4), Ok(10000));
        assert_eq!(encode_fixed(-0.0, 4).as_deref(), Ok("0"));
        assert_eq!(encode_fixed(-0.00001, 4).as_deref(), Ok("0"));
        assert_eq!(encode_fixed(1e15, 4), Err(Base62Error::OutOfRange));
        assert_eq!(encode_fixed(1e300, 22), Err(Base62Error::OutOfRange));
        assert_eq!(encode_fixed(f64::NAN, 4), Err(Base62Error::NotFinite));
        assert_eq!(
            encode_fixed(1.0, 309),
            Err(Base62Error::PrecisionOutOfRange { precision: 309 })
        );
    }

    #[test]
    fn fixed_decoding() {
        assert_eq!(decode_fixed("cmwc", 4), Ok(294.65));
        assert_eq!(decode_fixed("-1", 4), Ok(-0.0001));
        // Large magnitudes take the decimal-text path.
        assert_eq!(
            unscale_fixed(9_223_372_036_854_775_807, 6),
            Ok(9223372036854.775)
        );
        assert_eq!(unscale_fixed(i64::MIN, 4), Ok(-922337203685477.6));
        // Beyond 8 places the result is rounded to 8 places, ties to even.
        assert_eq!(unscale_fixed(1_953_125, 9), Ok(0.00195312));
        assert_eq!(unscale_fixed(123_456_789, 12), Ok(0.00012346));
        assert_eq!(unscale_fixed(1, 30), Ok(0.0));
        assert_eq!(unscale_fixed(5, 0), Ok(5.0));
    }

    #[test]
    fn batches_report_the_failing_index() {
        assert_eq!(
            encode_fixed_batch(&[1.0, 2.5], 4),
            Ok(vec!["2Bi".to_string(), "6ve".to_string()])
        );
        assert_eq!(
            encode_fixed_batch(&[1.0, f64::NAN], 4),
            Err((1, Base62Error::NotFinite))
        );
        assert_eq!(decode_fixed_batch(&["2Bi", "6ve"], 4), Ok(vec![1.0, 2.5]));
        assert_eq!(
            decode_fixed_batch(&["2Bi", "", "x"], 4),
            Err((
                1,
                Base62Error::Invalid {
                    position: 0,
                    found: None
                }
            ))
        );
        assert_eq!(decode_fixed_batch::<&str>(&[], 4), Ok(vec![]));
    }
}
