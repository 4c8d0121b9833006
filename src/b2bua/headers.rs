//! Header policy across legs (placeholder until the full policy lands):
//! copies the headers a trunk's `pass` list names, never dialog headers.

use crate::dialplan::HeaderPolicy;
use crate::sip::message::{Header, HeaderName, Message};

/// The headers of `from` that may cross to the other leg under `policy`.
pub fn copy_headers(from: &Message, policy: &HeaderPolicy) -> Vec<Header> {
    from.headers
        .iter()
        .filter(|h| h.name == HeaderName::Other || h.name == HeaderName::Reason)
        .filter(|h| {
            let name = String::from_utf8_lossy(h.raw_name()).to_ascii_lowercase();
            policy.pass.iter().any(|p| {
                let p = p.to_ascii_lowercase();
                match p.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => name == p,
                }
            }) && !policy.drop.iter().any(|d| d.eq_ignore_ascii_case(&name))
        })
        .cloned()
        .collect()
}
