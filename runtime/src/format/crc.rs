//! CRC-32 (IEEE 802.3): the file's last four bytes.

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, init and xorout
/// 0xFFFFFFFF) — the same as zlib's `crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    // Compile-time table construction: indices are loop-bounded constants.
    #[allow(clippy::indexing_slicing)]
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        let idx = ((crc ^ byte as u32) & 0xFF) as u8;
        // `idx` is a u8, and the table has 256 entries: the lookup cannot fail.
        crc = TABLE.get(idx as usize).copied().unwrap_or(0) ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
