//! Semantic validation of the top level: version, gateway, admin, timers,
//! listeners and trunks. Routes are in [`super::validate_route`], the
//! `media:` section in [`super::validate_media`], trunks' B2BUA options in
//! [`super::validate_trunk`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::DialPlan;
use super::check::{hostname_ok, name_ok, socket_addr};
use super::error::{Diags, Loc, show};
use super::schema::{GatewaySection, ListenerEntry, PlanFile, TimersSection, TrunkEntry};
use super::spanned::Sp;
use super::types::{GatewayConfig, Listener, TimerConfig, TransportKind, Trunk};
use super::validate_media::media;
use super::validate_route::{Known, routes};
use super::validate_trunk::trunk_policy;

/// Validates the whole file; errors go to `d`. The returned plan is only
/// meaningful when `d` has no errors.
pub(crate) fn build(f: &PlanFile, d: &mut Diags<'_>) -> DialPlan {
    if f.version.value != 1 {
        d.invalid(
            f.version.loc,
            format!(
                "unsupported dial plan version {}; this callgate reads version 1",
                f.version.value
            ),
        );
    }
    let gateway = f
        .gateway
        .as_ref()
        .map(|g| gateway(&g.value, d))
        .unwrap_or_default();
    let admin = f.admin.as_ref().and_then(|a| socket_addr(a, "admin", d));
    let timers = f
        .timers
        .as_ref()
        .map(|t| timers(&t.value, d))
        .unwrap_or_default();
    let mut names = Names::default();
    let listeners = listeners(&f.listeners, &mut names, d);
    let trunks = f
        .trunks
        .as_ref()
        .map(|t| trunks(&t.value, &mut names, d))
        .unwrap_or_default();
    // Every name written in the file counts as known for `source` / `trunks`
    // references, even when its entry has another error (reported already).
    let known = Known {
        listener_names: f
            .listeners
            .value
            .iter()
            .map(|l| l.value.name.value.clone())
            .collect(),
        trunk_names: f
            .trunks
            .iter()
            .flat_map(|t| t.value.iter().map(|t| t.value.name.value.clone()))
            .collect(),
        trunks: &trunks,
    };
    let media = f
        .media
        .as_ref()
        .map(|m| media(&m.value, &listeners, d))
        .unwrap_or_default();
    let routes = f
        .routes
        .as_ref()
        .map(|r| routes(&r.value, &known, d))
        .unwrap_or_default();
    DialPlan {
        gateway,
        admin,
        timers,
        media,
        listeners,
        trunks,
        routes,
    }
}

/// Listener and trunk names share one namespace, because a route's `source`
/// may name either.
#[derive(Default)]
struct Names {
    seen: Vec<(String, &'static str, Loc)>,
    index: HashMap<String, usize>,
}

impl Names {
    /// Registers `name`; reports a duplicate and returns false if taken.
    fn add(&mut self, name: &Sp<String>, kind: &'static str, d: &mut Diags<'_>) -> bool {
        if let Some(&i) = self.index.get(&name.value) {
            if let Some((_, first_kind, first)) = self.seen.get(i) {
                let msg = if *first_kind == kind {
                    format!(
                        "duplicate {kind} name `{}` (first defined at line {})",
                        show(&name.value),
                        first.line
                    )
                } else {
                    format!(
                        "{kind} name `{}` is already used by the {first_kind} at line {}; \
                         listener and trunk names must differ because `source` can name either",
                        show(&name.value),
                        first.line
                    )
                };
                d.invalid(name.loc, msg);
            }
            return false;
        }
        self.index.insert(name.value.clone(), self.seen.len());
        self.seen.push((name.value.clone(), kind, name.loc));
        true
    }
}

fn gateway(g: &GatewaySection, d: &mut Diags<'_>) -> GatewayConfig {
    let fqdn = g.fqdn.as_ref().and_then(|f| {
        if hostname_ok(&f.value) {
            Some(f.value.to_ascii_lowercase())
        } else {
            d.invalid(
                f.loc,
                format!(
                    "`fqdn` must be a host name such as `gw.example.test` \
                     (letters, digits and `-` in dot-separated labels, no trailing dot), got `{}`",
                    show(&f.value)
                ),
            );
            None
        }
    });
    GatewayConfig { fqdn }
}

/// Reads one timer, checking `min..=max`; `None` if absent or out of range.
pub(crate) fn timer(
    v: &Option<Sp<u64>>,
    key: &str,
    min: u64,
    max: u64,
    d: &mut Diags<'_>,
) -> Option<u64> {
    let v = v.as_ref()?;
    if (min..=max).contains(&v.value) {
        Some(v.value)
    } else {
        d.invalid(
            v.loc,
            format!("`{key}` must be between {min} and {max}, got {}", v.value),
        );
        None
    }
}

fn timers(t: &TimersSection, d: &mut Diags<'_>) -> TimerConfig {
    let def = TimerConfig::default();
    let t1 = timer(&t.t1_ms, "t1_ms", 1, 60_000, d).map(Duration::from_millis);
    let t2 = timer(&t.t2_ms, "t2_ms", 1, 600_000, d).map(Duration::from_millis);
    let t4 = timer(&t.t4_ms, "t4_ms", 1, 600_000, d).map(Duration::from_millis);
    let c = timer(&t.timer_c_s, "timer_c_s", 1, 86_400, d).map(Duration::from_secs);
    let (t1v, t2v) = (t1.unwrap_or(def.t1), t2.unwrap_or(def.t2));
    if t1v > t2v {
        let (ms1, ms2) = (t1v.as_millis(), t2v.as_millis());
        match (&t.t1_ms, &t.t2_ms) {
            (Some(s), Some(_)) => d.invalid(
                s.loc,
                format!("`t1_ms` ({ms1}) must not exceed `t2_ms` ({ms2})"),
            ),
            (Some(s), None) => d.invalid(
                s.loc,
                format!("`t1_ms` ({ms1}) must not exceed `t2_ms` ({ms2}, the default)"),
            ),
            (None, Some(s)) => d.invalid(
                s.loc,
                format!("`t2_ms` ({ms2}) must be at least `t1_ms` ({ms1}, the default)"),
            ),
            (None, None) => {}
        }
    }
    TimerConfig {
        t1: t1v,
        t2: t2v,
        t4: t4.unwrap_or(def.t4),
        timer_c: c.unwrap_or(def.timer_c),
        no_answer: timer(&t.no_answer_s, "no_answer_s", 1, 3_600, d)
            .map_or(def.no_answer, Duration::from_secs),
        max_call_duration: timer(&t.max_call_duration_s, "max_call_duration_s", 1, 604_800, d)
            .map_or(def.max_call_duration, Duration::from_secs),
    }
}

/// One bound socket, for the overlap check.
struct Bind<'n> {
    name: &'n str,
    transport: TransportKind,
    addr: SocketAddr,
    loc: Loc,
}

/// Whether two sockets of the same transport would fight over a port.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let (ia, ib) = (a.ip(), b.ip());
    ia == ib
        || (ia.is_unspecified() && (ia.is_ipv6() || ib.is_ipv4()))
        || (ib.is_unspecified() && (ib.is_ipv6() || ia.is_ipv4()))
}

fn listeners(
    list: &Sp<Vec<Sp<ListenerEntry>>>,
    names: &mut Names,
    d: &mut Diags<'_>,
) -> Vec<Listener> {
    if list.value.is_empty() {
        d.invalid(list.loc, "at least one listener is required");
    }
    let mut out = Vec::new();
    let mut binds: Vec<Bind<'_>> = Vec::new();
    for entry in &list.value {
        let l = &entry.value;
        let named = name_ok(&l.name, "listener", d) && names.add(&l.name, "listener", d);
        let udp = l.udp.as_ref().and_then(|a| socket_addr(a, "udp", d));
        let tcp = l.tcp.as_ref().and_then(|a| socket_addr(a, "tcp", d));
        if l.udp.is_none() && l.tcp.is_none() {
            d.invalid(
                entry.loc,
                format!(
                    "listener `{}` needs at least one of `udp` or `tcp`",
                    show(&l.name.value)
                ),
            );
        }
        for (transport, addr, sp) in [
            (TransportKind::Udp, udp, &l.udp),
            (TransportKind::Tcp, tcp, &l.tcp),
        ] {
            let (Some(addr), Some(sp)) = (addr, sp) else {
                continue;
            };
            if let Some(other) = binds
                .iter()
                .find(|b| b.transport == transport && overlaps(b.addr, addr))
            {
                d.invalid(
                    sp.loc,
                    format!(
                        "listener `{}` binds {transport} {addr}, which conflicts with \
                         {transport} {} of listener `{}` (line {})",
                        show(&l.name.value),
                        other.addr,
                        show(other.name),
                        other.loc.line
                    ),
                );
            }
            binds.push(Bind {
                name: &l.name.value,
                transport,
                addr,
                loc: sp.loc,
            });
        }
        if named {
            out.push(Listener {
                name: l.name.value.clone(),
                side: l.side.value,
                udp,
                tcp,
            });
        }
    }
    out
}

fn trunks(list: &[Sp<TrunkEntry>], names: &mut Names, d: &mut Diags<'_>) -> Vec<Trunk> {
    let mut out: Vec<Trunk> = Vec::new();
    for entry in list {
        let t = &entry.value;
        let named = name_ok(&t.name, "trunk", d) && names.add(&t.name, "trunk", d);
        let transport = t.transport.as_ref().map(|s| s.value).unwrap_or_default();
        let policy = Arc::new(trunk_policy(t, d));
        let Some(address) = socket_addr(&t.address, "address", d) else {
            continue;
        };
        if address.ip().is_unspecified() || address.port() == 0 {
            d.invalid(
                t.address.loc,
                format!(
                    "trunk `{}` address `{address}` cannot be sent to: \
                     use a specific IP address and a non-zero port",
                    show(&t.name.value)
                ),
            );
            continue;
        }
        if let Some(other) = out
            .iter()
            .find(|o| o.address == address && o.transport == transport)
        {
            d.invalid(
                t.address.loc,
                format!(
                    "trunk `{}` has the same address and transport ({address}/{transport}) \
                     as trunk `{}`",
                    show(&t.name.value),
                    other.name
                ),
            );
        }
        if named {
            out.push(Trunk {
                name: t.name.value.clone(),
                address,
                transport,
                policy,
            });
        }
    }
    out
}
