//! rtpengine's ng control protocol client shared by the benchmarks
//! (`examples/relay_bench.rs`, `examples/media_bench_wire/`): bencode values
//! and one UDP request/reply with a cookie, retried on silence.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A bencode value (only what the ng protocol uses).
#[derive(Debug, Clone)]
pub enum Ben {
    Str(Vec<u8>),
    Int(i64),
    List(Vec<Ben>),
    Dict(Vec<(Vec<u8>, Ben)>),
}

impl Ben {
    pub fn s(v: &str) -> Ben {
        Ben::Str(v.as_bytes().to_vec())
    }

    pub fn dict(fields: Vec<(&str, Ben)>) -> Ben {
        Ben::Dict(
            fields
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ben::Str(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Ben::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Ben::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Ben::Dict(d) => {
                out.push(b'd');
                let mut d = d.clone();
                d.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, v) in &d {
                    Ben::Str(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    pub fn decode(b: &[u8]) -> Option<(Ben, &[u8])> {
        match *b.first()? {
            b'i' => {
                let end = b.iter().position(|&c| c == b'e')?;
                let v = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
                Some((Ben::Int(v), &b[end + 1..]))
            }
            b'l' => {
                let mut rest = &b[1..];
                let mut l = Vec::new();
                while *rest.first()? != b'e' {
                    let (v, r) = Ben::decode(rest)?;
                    l.push(v);
                    rest = r;
                }
                Some((Ben::List(l), &rest[1..]))
            }
            b'd' => {
                let mut rest = &b[1..];
                let mut d = Vec::new();
                while *rest.first()? != b'e' {
                    let (Ben::Str(k), r) = Ben::decode(rest)? else {
                        return None;
                    };
                    let (v, r) = Ben::decode(r)?;
                    d.push((k, v));
                    rest = r;
                }
                Some((Ben::Dict(d), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = b.iter().position(|&c| c == b':')?;
                let n: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
                let s = b.get(colon + 1..colon + 1 + n)?;
                Some((Ben::Str(s.to_vec()), &b[colon + 1 + n..]))
            }
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Ben> {
        match self {
            Ben::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn str(&self) -> Option<String> {
        match self {
            Ben::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

pub struct Ng {
    sock: UdpSocket,
    to: SocketAddr,
    cookie: u64,
}

impl Ng {
    pub fn new(to: SocketAddr) -> std::io::Result<Ng> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(1000)))?;
        Ok(Ng {
            sock,
            to,
            cookie: u64::from(std::process::id()) << 32,
        })
    }

    /// One command; retried on silence (rtpengine answers a repeated cookie
    /// from its cache).
    pub fn call(&mut self, fields: Vec<(&str, Ben)>) -> Result<Ben, String> {
        self.cookie += 1;
        let mut msg = format!("{:x} ", self.cookie).into_bytes();
        Ben::dict(fields).encode(&mut msg);
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.sock
                .send_to(&msg, self.to)
                .map_err(|e| format!("ng send: {e}"))?;
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let reply = &buf[..n];
            let sp = reply
                .iter()
                .position(|&c| c == b' ')
                .ok_or("ng: no cookie")?;
            if reply[..sp] != *format!("{:x}", self.cookie).as_bytes() {
                continue;
            }
            let (v, _) = Ben::decode(&reply[sp + 1..]).ok_or("ng: bad bencode")?;
            return match v.get("result").and_then(Ben::str).as_deref() {
                Some("ok") | Some("pong") => Ok(v),
                r => Err(format!(
                    "ng: result {:?} {:?}",
                    r,
                    v.get("error-reason").and_then(Ben::str)
                )),
            };
        }
        Err(format!("ng: no answer from {}", self.to))
    }
}
