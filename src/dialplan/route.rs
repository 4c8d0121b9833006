//! Compiled routes and the pure first-match routing function.

use super::matcher::RouteMatcher;
use super::rewrite::{RewriteOp, apply_all};
use super::types::{Decision, ForkMode, MediaMode, RingbackTone, RouteMode, RouteQuery, Trunk};

/// What a matching route does.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Forward to these trunks in failover order.
    Forward {
        /// Never empty; shared with every decision.
        trunks: std::sync::Arc<[Trunk]>,
        /// Proxy or B2BUA.
        mode: RouteMode,
        /// Serial failover or parallel forking.
        fork: ForkMode,
        /// B2BUA media handling.
        media: MediaMode,
        /// B2BUA ringback on a 180 without SDP.
        ringback: RingbackTone,
    },
    /// Answer with a final error response.
    Reject {
        /// 400–699.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A validated route with compiled matchers and rewrites.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRoute {
    /// Unique route name (shared with every decision).
    pub name: std::sync::Arc<str>,
    /// Its conditions.
    pub matcher: RouteMatcher,
    /// Steps for the Request-URI user.
    pub rewrite: Vec<RewriteOp>,
    /// Steps for the From user.
    pub from_rewrite: Vec<RewriteOp>,
    /// Its target.
    pub action: Action,
}

impl CompiledRoute {
    /// The decision this route makes for `q` (assumes it matched).
    pub(crate) fn decide(&self, q: &RouteQuery<'_>) -> Decision {
        match &self.action {
            Action::Forward {
                trunks,
                mode,
                fork,
                media,
                ringback,
            } => Decision::Forward {
                route: self.name.clone(),
                trunks: trunks.clone(),
                ruri_user: apply_all(&self.rewrite, q.ruri_user),
                from_user: apply_all(&self.from_rewrite, q.from_user),
                mode: *mode,
                fork: *fork,
                media: *media,
                ringback: *ringback,
            },
            Action::Reject { status, reason } => Decision::Reject {
                route: self.name.clone(),
                status: *status,
                reason: reason.clone(),
            },
        }
    }
}

/// First-match routing over `routes`.
pub(crate) fn route(routes: &[CompiledRoute], q: &RouteQuery<'_>) -> Decision {
    routes
        .iter()
        .find(|r| r.matcher.matches(q))
        .map_or(Decision::NoRoute, |r| r.decide(q))
}

/// The standard reason phrase for a 4xx–6xx status (RFC 3261 §21 and
/// common extensions), used when a `reject` gives none.
pub(crate) fn default_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        429 => "Provide Referrer Identity",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::super::matcher::NumberMatcher;
    use super::*;
    use crate::dialplan::TransportKind;

    fn trunk(name: &str) -> Trunk {
        Trunk {
            name: name.into(),
            address: "127.0.0.1:5070".parse().unwrap_or_else(|e| panic!("{e}")),
            transport: TransportKind::Udp,
            policy: Default::default(),
        }
    }

    fn q(to: &str) -> RouteQuery<'_> {
        RouteQuery {
            ruri_user: to,
            from_user: "alice",
            source_listener: "client",
            source_trunk: None,
            source_addr: "127.0.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn routes() -> Vec<CompiledRoute> {
        vec![
            CompiledRoute {
                name: "uk".into(),
                matcher: RouteMatcher {
                    to: Some(NumberMatcher::Prefixes(vec!["+44".into()])),
                    ..RouteMatcher::default()
                },
                rewrite: vec![RewriteOp::Strip(1)],
                from_rewrite: vec![RewriteOp::Prepend("x".into())],
                action: Action::Forward {
                    trunks: vec![trunk("a"), trunk("b")].into(),
                    mode: RouteMode::B2bua,
                    fork: ForkMode::Serial,
                    media: MediaMode::Anchor,
                    ringback: RingbackTone::None,
                },
            },
            CompiledRoute {
                name: "premium".into(),
                matcher: RouteMatcher {
                    to: Some(NumberMatcher::Prefixes(vec!["+449".into(), "+1900".into()])),
                    ..RouteMatcher::default()
                },
                rewrite: vec![],
                from_rewrite: vec![],
                action: Action::Reject {
                    status: 403,
                    reason: "Forbidden".into(),
                },
            },
            CompiledRoute {
                name: "rest".into(),
                matcher: RouteMatcher {
                    to: Some(NumberMatcher::Prefixes(vec!["+".into()])),
                    ..RouteMatcher::default()
                },
                rewrite: vec![RewriteOp::Strip(0)],
                from_rewrite: vec![],
                action: Action::Forward {
                    trunks: vec![trunk("b")].into(),
                    mode: RouteMode::Proxy,
                    fork: ForkMode::Serial,
                    media: MediaMode::Anchor,
                    ringback: RingbackTone::None,
                },
            },
        ]
    }

    #[test]
    fn dialplan_first_match_wins() {
        let r = routes();
        // "+449..." matches both "uk" and "premium"; "uk" comes first.
        match route(&r, &q("+449000")) {
            Decision::Forward {
                route,
                trunks,
                ruri_user,
                from_user,
                mode,
                ..
            } => {
                assert_eq!(&*route, "uk");
                assert_eq!(trunks.len(), 2);
                assert_eq!(ruri_user.as_deref(), Some("449000"));
                assert_eq!(from_user.as_deref(), Some("xalice"));
                assert_eq!(mode, RouteMode::B2bua);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            route(&r, &q("+1900555")),
            Decision::Reject {
                route: "premium".into(),
                status: 403,
                reason: "Forbidden".into()
            }
        );
        match route(&r, &q("+33123")) {
            Decision::Forward {
                route, ruri_user, ..
            } => {
                assert_eq!(&*route, "rest");
                assert_eq!(ruri_user, None, "unchanged user is reported as None");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(route(&r, &q("33123")), Decision::NoRoute);
        assert_eq!(route(&[], &q("33123")), Decision::NoRoute);
    }

    #[test]
    fn dialplan_default_reasons() {
        assert_eq!(default_reason(403), "Forbidden");
        assert_eq!(default_reason(503), "Service Unavailable");
        assert_eq!(default_reason(699), "Rejected");
    }
}
