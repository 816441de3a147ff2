//! Byte-level helpers shared by the request and reply framers: finding the CRLF that ends a
//! protocol line, and parsing integers with exactly the rules of Redis's `string2ll`.

use memchr::memchr;

use crate::error::ProtocolError;

/// Looks for the CRLF ending a line, scanning `buf` from `*from` (the caller guarantees that
/// no CR lies between the line's start and `*from`).
///
/// Returns the index of the CR, or `None` when more bytes are needed; then `*from` has moved
/// past every byte already known to hold no CR, so a later call with a longer buffer resumes
/// there. A CR must sit at an index of at most `max_cr`: a longer line is `too_long`. A CR not
/// followed by LF is [`ProtocolError::ExpectedCrlf`].
pub(crate) fn find_crlf(
    buf: &[u8],
    from: &mut usize,
    max_cr: usize,
    too_long: ProtocolError,
) -> Result<Option<usize>, ProtocolError> {
    let end = buf.len().min(max_cr.saturating_add(1));
    let window = buf.get(*from..end).unwrap_or_default();
    match memchr(b'\r', window) {
        Some(offset) => {
            let cr = *from + offset;
            *from = cr;
            match buf.get(cr + 1) {
                None => Ok(None),
                Some(b'\n') => Ok(Some(cr)),
                Some(_) => Err(ProtocolError::ExpectedCrlf),
            }
        }
        None if buf.len() > max_cr => Err(too_long),
        None => {
            *from = (*from).max(end);
            Ok(None)
        }
    }
}

/// Parses a decimal `i64` as Redis's `string2ll` does: an optional `-`, then digits with no
/// leading zero (except `0` itself); no `+`, no spaces, no `-0`, no overflow.
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOO_LONG: ProtocolError = ProtocolError::InvalidBulkLength;

    #[test]
    fn parse_i64_follows_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"7"), Some(7));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"1048576"), Some(1_048_576));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"0x10",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn find_crlf_complete_line() {
        let mut from = 1;
        assert_eq!(
            find_crlf(b"+OK\r\n", &mut from, usize::MAX, TOO_LONG),
            Ok(Some(3))
        );
    }

    #[test]
    fn find_crlf_resumes_where_it_stopped() {
        let mut from = 1;
        assert_eq!(
            find_crlf(b"+OKOK", &mut from, usize::MAX, TOO_LONG),
            Ok(None)
        );
        assert_eq!(from, 5);
        assert_eq!(
            find_crlf(b"+OKOK\r", &mut from, usize::MAX, TOO_LONG),
            Ok(None)
        );
        assert_eq!(from, 5);
        assert_eq!(
            find_crlf(b"+OKOK\r\n", &mut from, usize::MAX, TOO_LONG),
            Ok(Some(5))
        );
    }

    #[test]
    fn find_crlf_rejects_cr_without_lf() {
        let mut from = 1;
        assert_eq!(
            find_crlf(b"+OK\rx", &mut from, usize::MAX, TOO_LONG),
            Err(ProtocolError::ExpectedCrlf)
        );
    }

    #[test]
    fn find_crlf_enforces_the_limit() {
        let mut from = 1;
        assert_eq!(find_crlf(b"$123\r\n", &mut from, 4, TOO_LONG), Ok(Some(4)));
        let mut from = 1;
        assert_eq!(find_crlf(b"$1234", &mut from, 4, TOO_LONG), Err(TOO_LONG));
        let mut from = 1;
        assert_eq!(
            find_crlf(b"$1234\r\n", &mut from, 4, TOO_LONG),
            Err(TOO_LONG)
        );
        let mut from = 1;
        assert_eq!(find_crlf(b"$123", &mut from, 4, TOO_LONG), Ok(None));
    }
}
