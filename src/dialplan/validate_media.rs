//! Validation of the top-level `media:` section (the B2BUA's RTP relay).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::check::{hostname_ok, offset_loc};
use super::error::{Diags, show};
use super::schema::MediaSection;
use super::spanned::Sp;
use super::types::{Listener, MediaConfig};
use super::validate::timer;

/// Validates `media:`; defaults fill omitted keys and keys with errors.
pub(crate) fn media(m: &MediaSection, listeners: &[Listener], d: &mut Diags<'_>) -> MediaConfig {
    let def = MediaConfig::default();
    let address = m
        .address
        .as_ref()
        .and_then(|a| address(a, d))
        .unwrap_or(def.address);
    let (port_first, port_last) = m
        .ports
        .as_ref()
        .and_then(|p| ports(p, address, listeners, d))
        .unwrap_or((def.port_first, def.port_last));
    let rtp_timeout = timer(&m.rtp_timeout_s, "rtp_timeout_s", 1, 86_400, d)
        .map_or(def.rtp_timeout, Duration::from_secs);
    MediaConfig {
        address,
        port_first,
        port_last,
        rtp_timeout,
    }
}

fn address(a: &Sp<String>, d: &mut Diags<'_>) -> Option<IpAddr> {
    let s = a.value.trim();
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let hint = if s.parse::<SocketAddr>().is_ok() {
                ": write the address without a port; the ports go in `ports`"
            } else if hostname_ok(s) && s.bytes().any(|b| b.is_ascii_alphabetic()) {
                ": host names are not allowed here, use an IP address"
            } else {
                ""
            };
            d.invalid(
                a.loc,
                format!(
                    "media `address` must be an IP address such as `192.0.2.10` or `2001:db8::10`, \
                     got `{}`{hint}",
                    show(s)
                ),
            );
            return None;
        }
    };
    if ip.is_unspecified() || ip.is_multicast() {
        d.invalid(
            a.loc,
            format!(
                "media `address` `{ip}` cannot be advertised in SDP: use the address peers \
                 send RTP to"
            ),
        );
        return None;
    }
    Some(ip)
}

/// Parses `FIRST-LAST`; checks order, even start, size and listener clashes.
fn ports(
    p: &Sp<String>,
    address: IpAddr,
    listeners: &[Listener],
    d: &mut Diags<'_>,
) -> Option<(u16, u16)> {
    let s = p.value.as_str();
    let form = || {
        format!(
            "`ports` must be a range `FIRST-LAST` such as `20000-20999`, got `{}`",
            show(s)
        )
    };
    let Some((a, b)) = s.split_once('-') else {
        d.invalid(p.loc, form());
        return None;
    };
    let number = |text: &str, off: usize, d: &mut Diags<'_>| -> Option<u16> {
        let t = text.trim();
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            d.invalid(p.loc, form());
            return None;
        }
        let lead = text.len() - text.trim_start().len();
        match t.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                d.invalid(
                    offset_loc(p, off + lead, d),
                    format!("port `{}` is out of range (1–65535)", show(t)),
                );
                None
            }
        }
    };
    let first = number(a, 0, d)?;
    let last = number(b, a.len() + 1, d)?;
    if first > last {
        d.invalid(
            p.loc,
            format!("`ports` range `{first}-{last}` is backwards: write `{last}-{first}`"),
        );
        return None;
    }
    if first % 2 == 1 {
        // Even starts next to `first` that leave at least 2 ports (port 0
        // is no port; 65535 + 1 does not exist).
        let fixes: Vec<String> = [first.checked_sub(1), first.checked_add(1)]
            .into_iter()
            .flatten()
            .filter(|&f| f > 0 && f < last)
            .map(|f| format!("`{f}-{last}`"))
            .collect();
        let fix = if fixes.is_empty() {
            String::new()
        } else {
            format!(": write {}", fixes.join(" or "))
        };
        d.invalid(
            p.loc,
            format!(
                "`ports` must start on an even port (RTP uses even ports and RTCP the next odd \
                 one, RFC 3550 §11){fix}"
            ),
        );
        return None;
    }
    if last == first {
        d.invalid(
            p.loc,
            format!("`ports` range `{first}-{last}` has 1 port; an RTP/RTCP pair needs at least 2"),
        );
        return None;
    }
    for l in listeners {
        let Some(udp) = l.udp else { continue };
        let ip = udp.ip();
        let same_ip = ip == address || ip.is_unspecified();
        if same_ip && (first..=last).contains(&udp.port()) {
            d.invalid(
                p.loc,
                format!(
                    "`ports` {first}-{last} include UDP port {} of listener `{}`; pick a range \
                     that leaves SIP ports out",
                    udp.port(),
                    l.name
                ),
            );
            return None;
        }
    }
    Some((first, last))
}
