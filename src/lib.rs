//! callgate: a SIP back-to-back user agent, signaling-controller proxy and PSTN gateway.
//!
//! Every module but [`runtime`] is sans-IO: state machines take `now` and bytes as
//! inputs and hand back what they want transmitted; only `runtime` owns sockets,
//! timers and the clock (see `../shared/design/architecture.md`).

pub mod b2bua;
pub mod dialplan;
pub mod dtmf;
pub mod media;
pub mod proxy;
pub mod sdp;
pub mod sip;

#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod runtime;
