//! Debug helper: parse each file given on the command line and print the outcome.
use bytes::Bytes;
use callgate::sip::message::{Limits, parse_datagram};
fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).unwrap_or_default();
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        match parse_datagram(Bytes::from(data), &Limits::default()) {
            Ok(m) => println!(
                "{name}: ok {} hdrs body={} {:?}",
                m.headers.len(),
                m.body.len(),
                m.start
            ),
            Err(f) => println!(
                "{name}: ERR req={} {} -> {:?}",
                f.looks_like_request,
                f.error,
                f.error.status()
            ),
        }
    }
}
