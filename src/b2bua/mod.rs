//! The back-to-back user agent: a [`Call`](call) joins leg A (the UAS dialog
//! toward whoever called us) and leg B (a UAC dialog toward a trunk). Nothing
//! of one leg's dialog (Call-ID, tags, CSeq, Via, Contact, route set) leaks to
//! the other; headers cross only as the trunk's header policy allows.
//!
//! The B2BUA lives inside a proxy shard and shares its transaction
//! [`Endpoint`](crate::sip::transaction::Endpoint); the proxy hands it every
//! request and response that belongs to one of its calls. It is sans-IO:
//! media work goes out as [`MediaCommand`]s, timers through `poll_timeout`.

mod info;

pub use info::{CallInfo, LegInfo};
