//! Transport rules: stream framing, RFC 3261 §18 datagram rules, RFC 3581 rport.
