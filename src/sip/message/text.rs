//! Appending numbers and addresses to header bytes without `core::fmt`:
//! the proxy writes a `received=`, `rport=` and branch on every request, and
//! `format!` (dynamic dispatch, padding logic, a String per piece) cost
//! 2-3 % of its CPU per call (perf, bench-cps steady state).

use std::net::IpAddr;

/// `n` in decimal, written into the end of `buf` (20 digits hold any u64);
/// for writers that are not a `Vec` (a `BytesMut`).
pub fn dec(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        // n % 10 < 10, so the cast cannot truncate.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Append `n` in decimal.
pub fn push_dec(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(dec(n, &mut [0u8; 20]));
}

/// Append `n` in lower-case hexadecimal, at least `width` digits
/// (zero-padded), like `{n:0width$x}`.
pub fn push_hex(out: &mut Vec<u8>, mut n: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [b'0'; 16];
    let mut i = buf.len();
    while n != 0 {
        i -= 1;
        // Masked to 0..16, so the index is in range.
        buf[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
    let start = i.min(buf.len().saturating_sub(width)).min(buf.len() - 1);
    out.extend_from_slice(&buf[start..]);
}

/// Append an IP address as `IpAddr`'s `Display` writes it (no brackets).
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_dec(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_display() {
        for n in [0u64, 1, 9, 10, 99, 100, 5060, 65535, u64::MAX] {
            let mut v = Vec::new();
            push_dec(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }

    #[test]
    fn hex_matches_format_with_width() {
        for n in [0u64, 1, 0xf, 0x10, 0xdead_beef, 0xffff_ffff, u64::MAX] {
            for w in [0usize, 1, 8, 12, 16] {
                let mut v = Vec::new();
                push_hex(&mut v, n, w);
                assert_eq!(v, format!("{n:0w$x}").into_bytes(), "n={n:x} w={w}");
            }
        }
    }

    #[test]
    fn ip_matches_display() {
        for s in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.30.40",
            "::1",
            "2001:db8::5",
        ] {
            let ip: IpAddr = s.parse().unwrap();
            let mut v = Vec::new();
            push_ip(&mut v, ip);
            assert_eq!(v, ip.to_string().into_bytes());
        }
    }
}
