//! The VRRP advertisement on the wire: [`Advert`], its [`encode`] and [`decode`], and
//! [`parse_ipv4`] for the IPv4 datagram a raw socket hands over.
//!
//! Only the VRRP message itself is built here; the kernel writes the IP header (the sender sets
//! TTL / hop limit 255 on the socket). Version 2 (RFC 3768) is IPv4 only, counts the advert
//! interval in whole seconds, carries 8 bytes of authentication data and checksums the VRRP
//! message alone. Version 3 (RFC 5798) counts centiseconds in 12 bits, has no authentication,
//! carries IPv4 or IPv6 addresses, and its checksum also covers the IP pseudo-header, which is
//! why encoding and decoding take the source and destination addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The TTL (IPv4) or hop limit (IPv6) every advert is sent with; anything else is dropped.
pub const VRRP_TTL: u8 = 255;
/// The IPv4 multicast group adverts are sent to.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts are sent to.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The fixed part of every advert: version/type, VRID, priority, count, two bytes, checksum.
const HEADER_LEN: usize = 8;
/// The authentication data that ends a version 2 advert.
const AUTH_LEN: usize = 8;
/// The only VRRP packet type: ADVERTISEMENT.
const TYPE_ADVERT: u8 = 1;
/// The largest interval version 3 can carry, in centiseconds (12 bits).
const V3_MAX_CENTIS: u16 = 0x0fff;
/// v2 auth type: no authentication.
const AUTH_TYPE_NONE: u8 = 0;
/// v2 auth type: simple text password.
const AUTH_TYPE_PASSWORD: u8 = 1;

/// The VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4, interval in seconds, optional simple password. keepalived's default.
    V2,
    /// RFC 5798: IPv4 or IPv6, interval in centiseconds, checksum with pseudo-header.
    V3,
}

impl Version {
    fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// An advertisement interval, held in centiseconds (never zero).
///
/// Version 2 can carry only whole seconds up to 255 s, version 3 only up to 4095 cs
/// (40.95 s); [`AdvertInterval::fits`] tells which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdvertInterval(u16);

impl AdvertInterval {
    /// An interval of whole seconds; `None` for zero.
    pub fn from_secs(secs: u8) -> Option<Self> {
        Self::from_centis(u16::from(secs) * 100)
    }

    /// An interval in centiseconds; `None` for zero.
    pub fn from_centis(centis: u16) -> Option<Self> {
        (centis != 0).then_some(Self(centis))
    }

    /// The interval a [`Duration`] names; `None` if it is zero, not a whole number of
    /// centiseconds, or longer than 655.35 s.
    pub fn from_duration(duration: Duration) -> Option<Self> {
        let nanos = duration.as_nanos();
        if !nanos.is_multiple_of(10_000_000) {
            return None;
        }
        u16::try_from(nanos / 10_000_000)
            .ok()
            .and_then(Self::from_centis)
    }

    /// The interval in centiseconds.
    pub fn centis(self) -> u16 {
        self.0
    }

    /// The interval as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0) * 10)
    }

    /// Whether `version` can carry this interval on the wire.
    pub fn fits(self, version: Version) -> bool {
        match version {
            Version::V2 => self.0.is_multiple_of(100) && self.0 / 100 <= u16::from(u8::MAX),
            Version::V3 => self.0 <= V3_MAX_CENTIS,
        }
    }
}

/// Version 2 authentication. Version 3 has none and always uses [`Auth::None`]. Debug does not
/// print the password.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Auth {
    /// Auth type 0: the 8 bytes of auth data are zero.
    #[default]
    None,
    /// Auth type 1: a clear-text password, NUL-padded to 8 bytes.
    Password([u8; AUTH_LEN]),
}

impl Auth {
    /// A simple password as keepalived sends it: the first 8 bytes of `password`, NUL-padded.
    pub fn password(password: &[u8]) -> Self {
        let mut data = [0; AUTH_LEN];
        for (slot, byte) in data.iter_mut().zip(password) {
            *slot = *byte;
        }
        Auth::Password(data)
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Password(_) => f.write_str("Password(<redacted>)"),
        }
    }
}

/// One VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    /// The protocol version.
    pub version: Version,
    /// The virtual router ID, 1 to 255.
    pub vrid: u8,
    /// 255 for the address owner, 1 to 254 for backups, 0 for a master that is leaving.
    pub priority: u8,
    /// The sender's advertisement interval.
    pub interval: AdvertInterval,
    /// The virtual addresses: IPv4 for version 2; all IPv4 or all IPv6 for version 3.
    pub addresses: Vec<IpAddr>,
    /// Authentication, version 2 only.
    pub auth: Auth,
}

/// Why an advert could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// VRID 0 does not exist.
    #[error("VRID 0 is not valid")]
    VridZero,
    /// More than 255 addresses.
    #[error("{0} addresses, at most 255 fit in an advert")]
    TooManyAddresses(usize),
    /// The interval is not whole seconds up to 255 (v2) or exceeds 4095 cs (v3).
    #[error("an interval of {centis} cs cannot be sent in {version}")]
    IntervalNotRepresentable {
        /// The version asked for.
        version: Version,
        /// The interval, in centiseconds.
        centis: u16,
    },
    /// The addresses, source and destination are not all of one family, or IPv6 in v2.
    #[error("address family mismatch between the addresses, source and destination")]
    AddressFamilyMismatch,
    /// A password with version 3, which has no authentication.
    #[error("VRRPv3 has no authentication")]
    AuthInV3,
}

/// Why received bytes are not an acceptable advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the 8-byte fixed header.
    #[error("{0} bytes is too short for a VRRP header")]
    TooShort(usize),
    /// The version nibble is not the one this instance speaks.
    #[error("expected {expected}, got version {found}")]
    WrongVersion {
        /// The version the caller speaks.
        expected: Version,
        /// The version nibble received.
        found: u8,
    },
    /// The type nibble is not 1 (ADVERTISEMENT).
    #[error("VRRP type {0} is not an advertisement")]
    WrongType(u8),
    /// VRID 0.
    #[error("VRID 0 is not valid")]
    VridZero,
    /// The length is not what the address count (and, for v2, auth data) requires.
    #[error("{count} addresses need {expected} bytes, got {len}")]
    LengthMismatch {
        /// The count field.
        count: u8,
        /// The length the count implies.
        expected: usize,
        /// The length received.
        len: usize,
    },
    /// Source and destination differ in family, or IPv6 carries version 2.
    #[error("address family mismatch between version, source and destination")]
    AddressFamilyMismatch,
    /// The checksum does not match the message.
    #[error("bad checksum {found:#06x}, expected {expected:#06x}")]
    BadChecksum {
        /// The checksum received.
        found: u16,
        /// The checksum of the message received.
        expected: u16,
    },
    /// An advert interval of zero.
    #[error("advert interval is zero")]
    IntervalZero,
    /// A v2 auth type other than none (0) or simple password (1); 2 is the obsolete AH.
    #[error("unsupported authentication type {0}")]
    UnsupportedAuthType(u8),
}

/// Appends the VRRP message for `advert`, sent from `src` to `dst`, to `out`.
///
/// `src` and `dst` feed the version 3 checksum; for version 2 they must be IPv4 and are
/// otherwise unused. Nothing is appended on error.
pub fn encode(
    advert: &Advert,
    src: IpAddr,
    dst: IpAddr,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if advert.vrid == 0 {
        return Err(EncodeError::VridZero);
    }
    let count = u8::try_from(advert.addresses.len())
        .map_err(|_| EncodeError::TooManyAddresses(advert.addresses.len()))?;
    if !advert.interval.fits(advert.version) {
        return Err(EncodeError::IntervalNotRepresentable {
            version: advert.version,
            centis: advert.interval.centis(),
        });
    }
    let v6 = family_of(advert.version, src, dst).ok_or(EncodeError::AddressFamilyMismatch)?;
    if advert
        .addresses
        .iter()
        .any(|address| address.is_ipv6() != v6)
    {
        return Err(EncodeError::AddressFamilyMismatch);
    }
    let (byte4, byte5) = match advert.version {
        Version::V2 => {
            let auth_type = match advert.auth {
                Auth::None => AUTH_TYPE_NONE,
                Auth::Password(_) => AUTH_TYPE_PASSWORD,
            };
            // `fits` checked that whole seconds up to 255 remain.
            let secs = u8::try_from(advert.interval.centis() / 100).unwrap_or(u8::MAX);
            (auth_type, secs)
        }
        Version::V3 => {
            if advert.auth != Auth::None {
                return Err(EncodeError::AuthInV3);
            }
            let [high, low] = advert.interval.centis().to_be_bytes();
            (high, low)
        }
    };

    let start = out.len();
    out.extend_from_slice(&[
        (advert.version.number() << 4) | TYPE_ADVERT,
        advert.vrid,
        advert.priority,
        count,
        byte4,
        byte5,
        0,
        0,
    ]);
    for address in &advert.addresses {
        match address {
            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
    }
    if advert.version == Version::V2 {
        match advert.auth {
            Auth::None => out.extend_from_slice(&[0; AUTH_LEN]),
            Auth::Password(data) => out.extend_from_slice(&data),
        }
    }
    let message = out.get(start..).unwrap_or_default();
    let checksum = message_checksum(advert.version, src, dst, message).to_be_bytes();
    if let Some(field) = out.get_mut(start + 6..start + HEADER_LEN) {
        field.copy_from_slice(&checksum);
    }
    Ok(())
}

/// Decodes the VRRP message `bytes`, received from `src` for `dst`, as an advert of version
/// `expected`.
///
/// Checks, in order: length of the header, version, type, families of `src` and `dst`,
/// length against the address count, checksum, VRID, interval and (v2) auth type. It does
/// not check the VRID, priority or password against any configuration; the state machine
/// does that.
pub fn decode(
    bytes: &[u8],
    expected: Version,
    src: IpAddr,
    dst: IpAddr,
) -> Result<Advert, PacketError> {
    let (header, rest) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(PacketError::TooShort(bytes.len()))?;
    let [
        version_type,
        vrid,
        priority,
        count,
        byte4,
        byte5,
        sum_high,
        sum_low,
    ] = *header;
    let found = version_type >> 4;
    if found != expected.number() {
        return Err(PacketError::WrongVersion { expected, found });
    }
    if version_type & 0x0f != TYPE_ADVERT {
        return Err(PacketError::WrongType(version_type & 0x0f));
    }
    let v6 = family_of(expected, src, dst).ok_or(PacketError::AddressFamilyMismatch)?;
    let address_len = if v6 { 16 } else { 4 };
    let auth_len = match expected {
        Version::V2 => AUTH_LEN,
        Version::V3 => 0,
    };
    let expected_len = HEADER_LEN + usize::from(count) * address_len + auth_len;
    if bytes.len() != expected_len {
        return Err(PacketError::LengthMismatch {
            count,
            expected: expected_len,
            len: bytes.len(),
        });
    }
    let found_sum = u16::from_be_bytes([sum_high, sum_low]);
    let computed = message_checksum(expected, src, dst, bytes);
    if found_sum != computed {
        return Err(PacketError::BadChecksum {
            found: found_sum,
            expected: computed,
        });
    }
    if vrid == 0 {
        return Err(PacketError::VridZero);
    }

    let addresses_len = usize::from(count) * address_len;
    let address_bytes = rest.get(..addresses_len).unwrap_or_default();
    let auth_data = rest.get(addresses_len..).unwrap_or_default();
    let addresses = if v6 {
        let (chunks, _) = address_bytes.as_chunks::<16>();
        chunks
            .iter()
            .map(|octets| IpAddr::V6(Ipv6Addr::from(*octets)))
            .collect()
    } else {
        let (chunks, _) = address_bytes.as_chunks::<4>();
        chunks
            .iter()
            .map(|octets| IpAddr::V4(Ipv4Addr::from(*octets)))
            .collect()
    };

    let (interval, auth) = match expected {
        Version::V2 => {
            let auth = match byte4 {
                AUTH_TYPE_NONE => Auth::None,
                AUTH_TYPE_PASSWORD => {
                    let data = auth_data
                        .first_chunk::<AUTH_LEN>()
                        .copied()
                        .unwrap_or_default();
                    Auth::Password(data)
                }
                other => return Err(PacketError::UnsupportedAuthType(other)),
            };
            (AdvertInterval::from_secs(byte5), auth)
        }
        Version::V3 => {
            let centis = u16::from_be_bytes([byte4, byte5]) & V3_MAX_CENTIS;
            (AdvertInterval::from_centis(centis), Auth::None)
        }
    };
    Ok(Advert {
        version: expected,
        vrid,
        priority,
        interval: interval.ok_or(PacketError::IntervalZero)?,
        addresses,
        auth,
    })
}

/// Whether a `version` advert from `src` to `dst` is IPv6; `None` if the families differ or
/// version 2 meets IPv6.
fn family_of(version: Version, src: IpAddr, dst: IpAddr) -> Option<bool> {
    match (version, src, dst) {
        (_, IpAddr::V4(_), IpAddr::V4(_)) => Some(false),
        (Version::V3, IpAddr::V6(_), IpAddr::V6(_)) => Some(true),
        _ => None,
    }
}

/// The checksum `message` should carry, computed as if its checksum field were zero.
fn message_checksum(version: Version, src: IpAddr, dst: IpAddr, message: &[u8]) -> u16 {
    let before = message.get(..6).unwrap_or_default();
    let after = message.get(HEADER_LEN..).unwrap_or_default();
    // The checksum field sits at an even offset, so skipping it keeps the words aligned.
    let mut sum = add_words(add_words(0, before), after);
    if version == Version::V3 {
        let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
        sum = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let sum = add_words(add_words(sum, &src.octets()), &dst.octets());
                add_words(sum, &[0, IPPROTO_VRRP]) + u64::from(length & 0xffff)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let sum = add_words(add_words(sum, &src.octets()), &dst.octets());
                add_words(sum, &length.to_be_bytes()) + u64::from(IPPROTO_VRRP)
            }
            _ => sum,
        };
    }
    !fold(sum)
}

/// Adds the big-endian 16-bit words of `bytes` to `sum`, the last odd byte padded with zero.
fn add_words(sum: u64, bytes: &[u8]) -> u64 {
    let (words, tail) = bytes.as_chunks::<2>();
    let sum = words
        .iter()
        .fold(sum, |sum, word| sum + u64::from(u16::from_be_bytes(*word)));
    match tail.first() {
        Some(byte) => sum + (u64::from(*byte) << 8),
        None => sum,
    }
}

/// Folds the carries of a one's-complement sum into 16 bits.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).unwrap_or(u16::MAX)
}

/// An IPv4 datagram as read from a raw VRRP socket: the fields of its header a receiver
/// checks, and the VRRP message it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Datagram<'a> {
    /// The sender's address.
    pub src: Ipv4Addr,
    /// The destination: the multicast group or this node's unicast address.
    pub dst: Ipv4Addr,
    /// The TTL; a valid advert arrives with [`VRRP_TTL`].
    pub ttl: u8,
    /// The VRRP message, for [`decode`].
    pub payload: &'a [u8],
}

/// Why bytes from a raw socket are not an IPv4 datagram carrying VRRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// Shorter than the 20-byte minimum IPv4 header.
    #[error("{0} bytes is too short for an IPv4 header")]
    TooShort(usize),
    /// The version nibble is not 4.
    #[error("IP version {0} is not IPv4")]
    NotIpv4(u8),
    /// The header length is under 20 bytes or beyond the data.
    #[error("bad IPv4 header length {header_len} for {len} bytes")]
    BadHeaderLength {
        /// The header length field, in bytes.
        header_len: usize,
        /// The bytes received.
        len: usize,
    },
    /// The total length is under the header length or beyond the data.
    #[error("bad IPv4 total length {total_len} for {len} bytes")]
    BadTotalLength {
        /// The total length field.
        total_len: usize,
        /// The bytes received.
        len: usize,
    },
    /// The protocol is not 112.
    #[error("IP protocol {0} is not VRRP")]
    NotVrrp(u8),
    /// A fragment; raw sockets see datagrams the kernel reassembled, so this is malformed.
    #[error("IPv4 fragment")]
    Fragment,
}

/// Parses an IPv4 datagram as a raw `IPPROTO_VRRP` socket returns it, header included.
///
/// Bytes beyond the total length are ignored. The header checksum is not checked: the kernel
/// drops datagrams whose header checksum is wrong before a raw socket sees them.
pub fn parse_ipv4(bytes: &[u8]) -> Result<Ipv4Datagram<'_>, DatagramError> {
    let header = bytes
        .first_chunk::<20>()
        .ok_or(DatagramError::TooShort(bytes.len()))?;
    let [
        version_ihl,
        _tos,
        total_high,
        total_low,
        _id_high,
        _id_low,
        flags_high,
        frag_low,
        ttl,
        protocol,
        _sum_high,
        _sum_low,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ] = *header;
    if version_ihl >> 4 != 4 {
        return Err(DatagramError::NotIpv4(version_ihl >> 4));
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if header_len < header.len() || header_len > bytes.len() {
        return Err(DatagramError::BadHeaderLength {
            header_len,
            len: bytes.len(),
        });
    }
    let total_len = usize::from(u16::from_be_bytes([total_high, total_low]));
    let payload = bytes
        .get(header_len..total_len)
        .ok_or(DatagramError::BadTotalLength {
            total_len,
            len: bytes.len(),
        })?;
    let more_fragments = flags_high & 0x20 != 0;
    let offset = u16::from_be_bytes([flags_high & 0x1f, frag_low]);
    if more_fragments || offset != 0 {
        return Err(DatagramError::Fragment);
    }
    if protocol != IPPROTO_VRRP {
        return Err(DatagramError::NotVrrp(protocol));
    }
    Ok(Ipv4Datagram {
        src: Ipv4Addr::new(s0, s1, s2, s3),
        dst: Ipv4Addr::new(d0, d1, d2, d3),
        ttl,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn v4(text: &str) -> IpAddr {
        IpAddr::V4(text.parse().unwrap())
    }

    fn v6(text: &str) -> IpAddr {
        IpAddr::V6(text.parse().unwrap())
    }

    /// Decodes a captured message, checks the advert, and re-encodes it to the same bytes.
    fn round_trip(message: &[u8], version: Version, src: IpAddr, dst: IpAddr, expected: &Advert) {
        let advert = decode(message, version, src, dst).unwrap();
        assert_eq!(&advert, expected);
        let mut out = vec![0xaa];
        encode(&advert, src, dst, &mut out).unwrap();
        assert_eq!(&out[1..], message);
    }

    // keepalived 2.2.7, v2, multicast, VRID 12, priority 101, auth PASS "secret12", from the
    // reference test bed (the source address does not enter the v2 checksum).
    #[test]
    fn keepalived_v2_password_multicast() {
        let message = hex("21 0c 65 01 01 01 f8 9a 0a d5 08 03 73 65 63 72 65 74 31 32");
        let expected = Advert {
            version: Version::V2,
            vrid: 12,
            priority: 101,
            interval: AdvertInterval::from_secs(1).unwrap(),
            addresses: vec![v4("10.213.8.3")],
            auth: Auth::password(b"secret12"),
        };
        round_trip(
            &message,
            Version::V2,
            v4("10.213.8.1"),
            v4("224.0.0.18"),
            &expected,
        );
    }

    // Captured on the rvc- namespace test bed: keepalived 2.2.7, `unicast_src_ip 10.213.21.1`,
    // `unicast_peer { 10.213.21.2 }`, VRID 21, priority 100, advert_int 1, no authentication.
    const V2_UNICAST_DATAGRAM: &str = "45c0002800010000ff707af80ad515010ad51502\
                                       2115640100015b090ad5150a0000000000000000";
    // The same instance on SIGTERM: priority 0.
    const V2_UNICAST_PRIORITY_0: &str = "211500010001bf090ad5150a0000000000000000";

    fn v2_unicast(priority: u8) -> Advert {
        Advert {
            version: Version::V2,
            vrid: 21,
            priority,
            interval: AdvertInterval::from_secs(1).unwrap(),
            addresses: vec![v4("10.213.21.10")],
            auth: Auth::None,
        }
    }

    #[test]
    fn keepalived_v2_unicast_without_auth() {
        let datagram = hex(V2_UNICAST_DATAGRAM);
        let ip = parse_ipv4(&datagram).unwrap();
        assert_eq!(ip.ttl, VRRP_TTL);
        assert_eq!(ip.src, "10.213.21.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(ip.dst, "10.213.21.2".parse::<Ipv4Addr>().unwrap());
        let (src, dst) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
        round_trip(ip.payload, Version::V2, src, dst, &v2_unicast(100));
        let leaving = hex(V2_UNICAST_PRIORITY_0);
        round_trip(&leaving, Version::V2, src, dst, &v2_unicast(0));
    }

    // Captured on the rvc- test bed: keepalived 2.2.7, `version 3`, multicast, VRID 31,
    // priority 150, advert_int 0.5, two VIPs. The v3 checksum covers the pseudo-header.
    const V3_V4_DATAGRAM: &str = "45c0002400010000ff70bac00ad51501e0000012\
                                  311f96020032f8590ad5151f0ad51520";
    // The same instance on SIGTERM: priority 0.
    const V3_V4_PRIORITY_0: &str = "311f000200328e5a0ad5151f0ad51520";

    fn v3_v4(priority: u8) -> Advert {
        Advert {
            version: Version::V3,
            vrid: 31,
            priority,
            interval: AdvertInterval::from_centis(50).unwrap(),
            addresses: vec![v4("10.213.21.31"), v4("10.213.21.32")],
            auth: Auth::None,
        }
    }

    #[test]
    fn keepalived_v3_ipv4_multicast() {
        let datagram = hex(V3_V4_DATAGRAM);
        let ip = parse_ipv4(&datagram).unwrap();
        assert_eq!(ip.ttl, VRRP_TTL);
        assert_eq!(ip.dst, MULTICAST_V4);
        let (src, dst) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
        round_trip(ip.payload, Version::V3, src, dst, &v3_v4(150));
        round_trip(&hex(V3_V4_PRIORITY_0), Version::V3, src, dst, &v3_v4(0));
        assert_eq!(
            v3_v4(150).interval.as_duration(),
            Duration::from_millis(500)
        );
    }

    // Captured on the rvc- test bed with an AF_INET6 raw socket (the kernel strips the IPv6
    // header; source from recvmsg, destination from IPV6_PKTINFO, hop limit 255):
    // keepalived 2.2.7, VRID 36, priority 200, advert_int 1, VIP fd00:213:21::36.
    const V3_V6_SRC: &str = "fe80::2cbe:68ff:feba:6c6b";
    const V3_V6_MESSAGE: &str = "3124c80100640809fd000213002100000000000000000036";
    const V3_V6_PRIORITY_0: &str = "312400010064d009fd000213002100000000000000000036";

    fn v3_v6(priority: u8) -> Advert {
        Advert {
            version: Version::V3,
            vrid: 36,
            priority,
            interval: AdvertInterval::from_secs(1).unwrap(),
            addresses: vec![v6("fd00:213:21::36")],
            auth: Auth::None,
        }
    }

    #[test]
    fn keepalived_v3_ipv6_multicast() {
        let (src, dst) = (v6(V3_V6_SRC), IpAddr::V6(MULTICAST_V6));
        round_trip(&hex(V3_V6_MESSAGE), Version::V3, src, dst, &v3_v6(200));
        round_trip(&hex(V3_V6_PRIORITY_0), Version::V3, src, dst, &v3_v6(0));
    }

    #[test]
    fn debug_does_not_show_the_password() {
        let auth = Auth::password(b"secret12");
        assert_eq!(format!("{auth:?}"), "Password(<redacted>)");
        assert_eq!(format!("{:?}", Auth::None), "None");
    }

    #[test]
    fn v3_checksum_depends_on_the_pseudo_header() {
        let message = hex(V3_V6_MESSAGE);
        let other_src = v6("fe80::1");
        let error = decode(&message, Version::V3, other_src, IpAddr::V6(MULTICAST_V6));
        assert!(matches!(error, Err(PacketError::BadChecksum { .. })));
        let message = hex(V3_V4_PRIORITY_0);
        let error = decode(&message, Version::V3, v4("10.213.21.9"), v4("224.0.0.18"));
        assert!(matches!(error, Err(PacketError::BadChecksum { .. })));
    }

    #[test]
    fn decode_errors() {
        let (src, dst) = (v4("10.213.21.1"), v4("10.213.21.2"));
        let good = hex(V2_UNICAST_PRIORITY_0);
        assert_eq!(
            decode(&good[..7], Version::V2, src, dst),
            Err(PacketError::TooShort(7))
        );
        assert_eq!(
            decode(&good, Version::V3, src, dst),
            Err(PacketError::WrongVersion {
                expected: Version::V3,
                found: 2
            })
        );
        let mut wrong_type = good.clone();
        wrong_type[0] = 0x22;
        assert_eq!(
            decode(&wrong_type, Version::V2, src, dst),
            Err(PacketError::WrongType(2))
        );
        assert_eq!(
            decode(&good[..16], Version::V2, src, dst),
            Err(PacketError::LengthMismatch {
                count: 1,
                expected: 20,
                len: 16
            })
        );
        let mut longer = good.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            decode(&longer, Version::V2, src, dst),
            Err(PacketError::LengthMismatch { len: 24, .. })
        ));
        assert_eq!(
            decode(&good, Version::V2, v6("fe80::1"), v6("ff02::12")),
            Err(PacketError::AddressFamilyMismatch)
        );
        assert_eq!(
            decode(&hex(V3_V4_PRIORITY_0), Version::V3, src, v6("ff02::12")),
            Err(PacketError::AddressFamilyMismatch)
        );
        let mut corrupt = good.clone();
        corrupt[2] = 1;
        assert_eq!(
            decode(&corrupt, Version::V2, src, dst),
            Err(PacketError::BadChecksum {
                found: 0xbf09,
                expected: 0xbe09
            })
        );
    }

    /// Encodes `advert`, then sets each `(index, value)` byte and fixes the checksum.
    fn patched(advert: &Advert, patches: &[(usize, u8)]) -> Vec<u8> {
        let (src, dst) = (v4("10.213.21.1"), v4("224.0.0.18"));
        let mut out = Vec::new();
        encode(advert, src, dst, &mut out).unwrap();
        for &(index, value) in patches {
            out[index] = value;
        }
        let sum = message_checksum(advert.version, src, dst, &out).to_be_bytes();
        out[6..8].copy_from_slice(&sum);
        out
    }

    #[test]
    fn decode_rejects_bad_fields_behind_a_valid_checksum() {
        let (src, dst) = (v4("10.213.21.1"), v4("224.0.0.18"));
        let v2 = v2_unicast(100);
        let decode_v2 = |bytes: &[u8]| decode(bytes, Version::V2, src, dst);
        assert_eq!(
            decode_v2(&patched(&v2, &[(1, 0)])),
            Err(PacketError::VridZero)
        );
        assert_eq!(
            decode_v2(&patched(&v2, &[(5, 0)])),
            Err(PacketError::IntervalZero)
        );
        assert_eq!(
            decode_v2(&patched(&v2, &[(4, 2)])),
            Err(PacketError::UnsupportedAuthType(2))
        );
        let v3 = v3_v4(100);
        let zero_interval = patched(&v3, &[(4, 0xf0), (5, 0)]);
        assert_eq!(
            decode(&zero_interval, Version::V3, src, dst),
            Err(PacketError::IntervalZero)
        );
        // The reserved bits are ignored on receipt.
        let reserved = patched(&v3, &[(4, 0xf0)]);
        assert_eq!(decode(&reserved, Version::V3, src, dst), Ok(v3));
    }

    #[test]
    fn encode_errors() {
        let (src, dst) = (v4("10.213.21.1"), v4("224.0.0.18"));
        let mut out = Vec::new();
        let mut advert = v2_unicast(100);
        advert.interval = AdvertInterval::from_centis(150).unwrap();
        assert_eq!(
            encode(&advert, src, dst, &mut out),
            Err(EncodeError::IntervalNotRepresentable {
                version: Version::V2,
                centis: 150
            })
        );
        let mut advert = v3_v4(100);
        advert.interval = AdvertInterval::from_secs(41).unwrap();
        assert!(matches!(
            encode(&advert, src, dst, &mut out),
            Err(EncodeError::IntervalNotRepresentable { .. })
        ));
        let mut advert = v3_v4(100);
        advert.auth = Auth::password(b"x");
        assert_eq!(
            encode(&advert, src, dst, &mut out),
            Err(EncodeError::AuthInV3)
        );
        let mut advert = v3_v4(100);
        advert.addresses.push(v6("fd00::1"));
        assert_eq!(
            encode(&advert, src, dst, &mut out),
            Err(EncodeError::AddressFamilyMismatch)
        );
        assert_eq!(
            encode(&v3_v6(100), v6("fe80::1"), dst, &mut out),
            Err(EncodeError::AddressFamilyMismatch)
        );
        let mut advert = v2_unicast(100);
        advert.vrid = 0;
        assert_eq!(
            encode(&advert, src, dst, &mut out),
            Err(EncodeError::VridZero)
        );
        let mut advert = v2_unicast(100);
        advert.addresses = vec![v4("10.213.21.10"); 256];
        assert_eq!(
            encode(&advert, src, dst, &mut out),
            Err(EncodeError::TooManyAddresses(256))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn interval_conversions() {
        let quarter = AdvertInterval::from_duration(Duration::from_millis(250)).unwrap();
        assert_eq!(quarter.centis(), 25);
        assert!(quarter.fits(Version::V3) && !quarter.fits(Version::V2));
        assert_eq!(
            AdvertInterval::from_duration(Duration::from_millis(5)),
            None
        );
        assert_eq!(AdvertInterval::from_duration(Duration::ZERO), None);
        assert_eq!(
            AdvertInterval::from_duration(Duration::from_secs(1000)),
            None
        );
        let max_v2 = AdvertInterval::from_secs(255).unwrap();
        assert!(max_v2.fits(Version::V2) && !max_v2.fits(Version::V3));
        assert_eq!(AdvertInterval::from_centis(0), None);
    }

    #[test]
    fn password_is_truncated_and_padded() {
        assert_eq!(Auth::password(b"secret12345"), Auth::Password(*b"secret12"));
        assert_eq!(Auth::password(b"ab"), Auth::Password(*b"ab\0\0\0\0\0\0"));
    }

    #[test]
    fn datagram_errors() {
        let good = hex(V3_V4_DATAGRAM);
        assert_eq!(parse_ipv4(&good[..19]), Err(DatagramError::TooShort(19)));
        let mut v6_packet = good.clone();
        v6_packet[0] = 0x65;
        assert_eq!(parse_ipv4(&v6_packet), Err(DatagramError::NotIpv4(6)));
        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        assert!(matches!(
            parse_ipv4(&short_ihl),
            Err(DatagramError::BadHeaderLength { header_len: 16, .. })
        ));
        assert!(matches!(
            parse_ipv4(&good[..30]),
            Err(DatagramError::BadTotalLength { total_len: 36, .. })
        ));
        let mut tcp = good.clone();
        tcp[9] = 6;
        assert_eq!(parse_ipv4(&tcp), Err(DatagramError::NotVrrp(6)));
        let mut fragment = good.clone();
        fragment[6] = 0x20;
        assert_eq!(parse_ipv4(&fragment), Err(DatagramError::Fragment));
        // Bytes beyond the total length are not part of the payload.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 4]);
        assert_eq!(parse_ipv4(&padded).unwrap().payload.len(), 16);
    }
}
