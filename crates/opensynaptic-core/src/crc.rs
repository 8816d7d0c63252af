//! The two frame checksums.
//!
//! * CRC-8/SMBUS: poly 0x07, init 0x00, MSB first, no final xor
//!   (check "123456789" = 0xF4). Covers the plain body.
//! * CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor
//!   (check "123456789" = 0x29B1). Covers every wire byte before it.
//!
//! Both use slicing-by-8 tables built at compile time: frames are typically
//! 20-60 bytes, where eight table lookups per step beat a byte-at-a-time loop.

const CRC8_POLY: u8 = 0x07;
const CRC16_POLY: u16 = 0x1021;
const CRC16_INIT: u16 = 0xFFFF;

const CRC8_TABLES: [[u8; 256]; 8] = {
    let mut tables = [[0u8; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut crc = n as u8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ CRC8_POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        tables[0][n] = crc;
        n += 1;
    }
    // tables[k][x]: the effect of byte x followed by k zero bytes.
    let mut k = 1;
    while k < 8 {
        let mut n = 0;
        while n < 256 {
            tables[k][n] = tables[0][tables[k - 1][n] as usize];
            n += 1;
        }
        k += 1;
    }
    tables
};

const CRC16_TABLES: [[u16; 256]; 8] = {
    let mut tables = [[0u16; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut crc = (n as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ CRC16_POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        tables[0][n] = crc;
        n += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut n = 0;
        while n < 256 {
            let prev = tables[k - 1][n];
            tables[k][n] = (prev << 8) ^ tables[0][(prev >> 8) as usize];
            n += 1;
        }
        k += 1;
    }
    tables
};

/// CRC-8/SMBUS of `data`.
pub fn crc8(data: &[u8]) -> u8 {
    let t = &CRC8_TABLES;
    let mut crc: u8 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        crc = t[7][(crc ^ c[0]) as usize]
            ^ t[6][c[1] as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][(crc ^ b) as usize];
    }
    crc
}

/// CRC-16/CCITT-FALSE of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc: u16 = CRC16_INIT;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let [hi, lo] = crc.to_be_bytes();
        crc = t[7][(hi ^ c[0]) as usize]
            ^ t[6][(lo ^ c[1]) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc8_bitwise(data: &[u8]) -> u8 {
        let mut crc = 0u8;
        for &b in data {
            crc ^= b;
            for _ in 0..8 {
                crc = if crc & 0x80 != 0 {
                    (crc << 1) ^ CRC8_POLY
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    fn crc16_bitwise(data: &[u8]) -> u16 {
        let mut crc = CRC16_INIT;
        for &b in data {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ CRC16_POLY
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_values() {
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc8(b""), 0);
        assert_eq!(crc16(b""), 0xFFFF);
    }

    #[test]
    fn sliced_matches_bitwise_for_every_length() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            for start in 0..3.min(len + 1) {
                let slice = &data[start..len];
                assert_eq!(crc8(slice), crc8_bitwise(slice), "crc8 len {len}");
                assert_eq!(crc16(slice), crc16_bitwise(slice), "crc16 len {len}");
            }
        }
    }
}
