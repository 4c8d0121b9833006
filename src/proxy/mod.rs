//! The signaling controller: a stateful RFC 3261 §16 proxy driven by the dial plan.
