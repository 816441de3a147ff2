//! nutcracker's own readings of scalar text, reproduced bit for bit because they decide what a
//! config means: `nc_atoi` (digits only, 32-bit wrap-around), glibc `strtol` in base 8 (listen
//! permissions), and `string_compare` (length first, then bytes), which orders and
//! de-duplicates pools and servers.

use std::cmp::Ordering;

/// Why `nc_atoi` refused a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtoiError {
    /// Empty, or a byte other than an ASCII digit.
    NotANumber,
    /// Only digits, but the 32-bit accumulator wrapped to a negative value.
    Negative,
}

/// nutcracker's `nc_atoi`: ASCII digits only, accumulated in a wrapping `int`, refused when the
/// result is negative. So `2147483648` is refused while `4294967297` reads as 1 [verified].
pub(crate) fn nc_atoi(text: &str) -> Result<u32, AtoiError> {
    if text.is_empty() {
        return Err(AtoiError::NotANumber);
    }
    let mut value: i32 = 0;
    for byte in text.bytes() {
        if !byte.is_ascii_digit() {
            return Err(AtoiError::NotANumber);
        }
        value = value.wrapping_mul(10).wrapping_add(i32::from(byte - b'0'));
    }
    u32::try_from(value).map_err(|_| AtoiError::Negative)
}

/// glibc `strtol(text, NULL, 8)`: leading C whitespace, an optional sign, then octal digits up
/// to the first other byte (none at all reads as 0). `None` is `ERANGE`.
pub(crate) fn strtol_octal(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r'))
    {
        i += 1;
    }
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(digit @ b'0'..=b'7') = bytes.get(i).copied() {
        match magnitude
            .checked_mul(8)
            .and_then(|m| m.checked_add(u64::from(digit - b'0')))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        return None;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// nutcracker's `string_compare`: shorter strings first, then byte order. (Its `strncmp` would
/// also stop at a NUL byte, but scalars with a NUL are refused before they get here.)
pub(crate) fn nc_compare(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_accepts_digits_only() {
        assert_eq!(nc_atoi("0"), Ok(0));
        assert_eq!(nc_atoi("007"), Ok(7));
        assert_eq!(nc_atoi("2147483647"), Ok(2_147_483_647));
        assert_eq!(nc_atoi(""), Err(AtoiError::NotANumber));
        assert_eq!(nc_atoi("-1"), Err(AtoiError::NotANumber));
        assert_eq!(nc_atoi("+1"), Err(AtoiError::NotANumber));
        assert_eq!(nc_atoi(" 1"), Err(AtoiError::NotANumber));
        assert_eq!(nc_atoi("1ms"), Err(AtoiError::NotANumber));
        assert_eq!(nc_atoi("１"), Err(AtoiError::NotANumber));
    }

    #[test]
    fn atoi_wraps_like_a_c_int() {
        assert_eq!(nc_atoi("2147483648"), Err(AtoiError::Negative));
        assert_eq!(nc_atoi("4294967295"), Err(AtoiError::Negative));
        assert_eq!(nc_atoi("4294967296"), Ok(0));
        assert_eq!(nc_atoi("4294967297"), Ok(1));
        // 10^20 mod 2^32 = 1661992960, positive as an int.
        assert_eq!(nc_atoi("100000000000000000000"), Ok(1_661_992_960));
    }

    #[test]
    fn strtol_reads_like_glibc() {
        assert_eq!(strtol_octal("0777"), Some(0o777));
        assert_eq!(strtol_octal("  +7x"), Some(7));
        assert_eq!(strtol_octal("-1"), Some(-1));
        assert_eq!(strtol_octal("999"), Some(0));
        assert_eq!(strtol_octal(""), Some(0));
        assert_eq!(strtol_octal("0x1"), Some(0));
        assert_eq!(strtol_octal("777777777777777777777777777"), None);
        assert_eq!(strtol_octal("-1000000000000000000000"), Some(i64::MIN));
        assert_eq!(strtol_octal("1000000000000000000000"), None);
    }

    #[test]
    fn compare_is_length_then_strncmp() {
        assert_eq!(nc_compare(b"zz", b"aaa"), Ordering::Less);
        assert_eq!(nc_compare(b"ab", b"aa"), Ordering::Greater);
        assert_eq!(nc_compare(b"a\x80", b"a\x7F"), Ordering::Greater);
        assert_eq!(nc_compare(b"same", b"same"), Ordering::Equal);
    }
}
