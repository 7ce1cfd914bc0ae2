//! milter-bench: a milter load driver. It plays the MTA side of the milter
//! protocol (version 6) itself, the way Postfix does, over N concurrent
//! connections that replay a set of .eml files, and reports throughput and the
//! latency of the end-of-message reply.
//!
//! ```text
//! milter-bench --socket unix:/run/impostor.sock -c 20 -n 20000 msgs/
//! milter-bench --socket inet:127.0.0.1:7357 --json tests/e2e/msgs
//! ```
//!
//! Per message it sends: macros + CONNECT (once per connection), HELO, MAIL,
//! RCPT, DATA, every header, EOH, the body in chunks of at most 65,535 bytes,
//! and EOM; it honours the steps the milter negotiated away (SMFIP_NO*), the
//! ones it wants no reply to (SMFIP_NR_*; buffered like Postfix's stream, written
//! in 4 KiB batches and before each read) and SKIP after a body chunk. The
//! end-of-message latency is measured from writing EOM to reading the final
//! reply (accept, continue, reject, tempfail, replycode or discard), with the
//! modification actions in between (add/insert/change header, quarantine,
//! replace body, ...) counted by type.
//!
//! Envelope: MAIL FROM is the `Return-Path`, else the `From` address of each
//! file; the client IP, HELO and recipient come from the options. A first
//! header `X-Bench-Envelope: ip=203.0.113.7 helo=mx.example from=a@b.example
//! to=c@d.example` overrides them per file and is not sent to the milter.
//!
//! Any protocol error (bad frame, unexpected reply, timeout, connection closed)
//! is counted; the connection is then dropped and a new one opened.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Parser;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

// ---------------------------------------------------------------------------------------------
// Protocol constants (libmilter's mfdef.h)

/// Milter protocol version we speak.
pub const VERSION: u32 = 6;
/// Size of the MTA's stream buffer (Postfix's VSTREAM_BUFSIZE): events the
/// milter wants no reply to are written in batches of about this much.
const WRITE_BUFFER: usize = 4096;

/// Largest body chunk an MTA sends (MILTER_CHUNK_SIZE).
pub const CHUNK: usize = 65535;
/// Largest frame we accept from a milter (replbody chunks, big headers).
const MAX_FRAME: usize = 16 * 1024 * 1024;

#[allow(dead_code)]
pub mod cmd {
    pub const ABORT: u8 = b'A';
    pub const BODY: u8 = b'B';
    pub const CONNECT: u8 = b'C';
    pub const MACRO: u8 = b'D';
    pub const EOB: u8 = b'E';
    pub const HELO: u8 = b'H';
    pub const HEADER: u8 = b'L';
    pub const MAIL: u8 = b'M';
    pub const EOH: u8 = b'N';
    pub const OPTNEG: u8 = b'O';
    pub const QUIT: u8 = b'Q';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
}

/// SMFIF_*: every action an MTA can offer (Postfix offers them all).
pub const ALL_ACTIONS: u32 = 0x1ff;

/// SMFIP_* protocol flags.
#[allow(dead_code)]
pub mod pf {
    pub const NOCONNECT: u32 = 0x1;
    pub const NOHELO: u32 = 0x2;
    pub const NOMAIL: u32 = 0x4;
    pub const NORCPT: u32 = 0x8;
    pub const NOBODY: u32 = 0x10;
    pub const NOHDRS: u32 = 0x20;
    pub const NOEOH: u32 = 0x40;
    pub const NR_HDR: u32 = 0x80;
    pub const NOUNKNOWN: u32 = 0x100;
    pub const NODATA: u32 = 0x200;
    pub const SKIP: u32 = 0x400;
    pub const RCPT_REJ: u32 = 0x800;
    pub const NR_CONN: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x10000;
    pub const NR_UNKN: u32 = 0x20000;
    pub const NR_EOH: u32 = 0x40000;
    pub const NR_BODY: u32 = 0x80000;
    pub const HDR_LEADSPC: u32 = 0x100000;
    /// Everything an MTA may offer in version 6 (no MDS_* large-chunk flags).
    pub const OFFER: u32 = 0x1fffff;
}

// ---------------------------------------------------------------------------------------------
// Frame encoding (MTA -> milter)

/// Appends one frame: 4-byte big-endian length (command byte included), command, payload.
pub fn put_frame(out: &mut Vec<u8>, cmd: u8, payload: &[u8]) {
    out.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
    out.push(cmd);
    out.extend_from_slice(payload);
}

/// Appends a frame whose payload is a list of NUL-terminated strings.
pub fn put_strings(out: &mut Vec<u8>, cmd: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len() + 1).sum();
    out.extend_from_slice(&((len + 1) as u32).to_be_bytes());
    out.push(cmd);
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
}

/// SMFIC_OPTNEG as an MTA sends it.
pub fn put_optneg(out: &mut Vec<u8>, actions: u32, protocol: u32) {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&VERSION.to_be_bytes());
    p.extend_from_slice(&actions.to_be_bytes());
    p.extend_from_slice(&protocol.to_be_bytes());
    put_frame(out, cmd::OPTNEG, &p);
}

/// SMFIC_MACRO for the command `stage`: `stage` byte, then name\0value\0 pairs.
pub fn put_macros(out: &mut Vec<u8>, stage: u8, macros: &[(&str, &str)]) {
    let len: usize = 1 + macros.iter().map(|(n, v)| n.len() + v.len() + 2).sum::<usize>();
    out.extend_from_slice(&((len + 1) as u32).to_be_bytes());
    out.push(cmd::MACRO);
    out.push(stage);
    for (n, v) in macros {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
}

/// SMFIC_CONNECT: hostname\0, family ('4', '6', or 'U' for unknown), port, address\0.
pub fn put_connect(out: &mut Vec<u8>, hostname: &str, ip: Option<IpAddr>, port: u16) {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(hostname.as_bytes());
    p.push(0);
    match ip {
        Some(ip) => {
            p.push(if ip.is_ipv4() { b'4' } else { b'6' });
            p.extend_from_slice(&port.to_be_bytes());
            p.extend_from_slice(ip.to_string().as_bytes());
            p.push(0);
        }
        None => p.push(b'U'),
    }
    put_frame(out, cmd::CONNECT, &p);
}

// ---------------------------------------------------------------------------------------------
// Frame decoding (milter -> MTA)

/// One reply from the milter.
#[allow(dead_code)] // fields are for tests and debugging output
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// SMFIC_OPTNEG answer: version, actions, protocol flags, requested macros (stage, list).
    Negotiate {
        version: u32,
        actions: u32,
        protocol: u32,
        macros: Vec<(u32, String)>,
    },
    Accept,
    Continue,
    Discard,
    Reject,
    Tempfail,
    /// SMFIR_REPLYCODE: "550 5.7.1 text".
    ReplyCode(String),
    Skip,
    Progress,
    ConnFail,
    AddHeader {
        name: String,
        value: String,
    },
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    Quarantine(String),
    ReplaceBody(usize),
    AddRcpt(String),
    DelRcpt(String),
    ChangeFrom(String),
    SetSymList,
}

impl Reply {
    /// Ends the current stage (a reply to the command just sent).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Reply::Accept
                | Reply::Continue
                | Reply::Discard
                | Reply::Reject
                | Reply::Tempfail
                | Reply::ReplyCode(_)
                | Reply::Skip
                | Reply::ConnFail
        )
    }

    /// Name used in the counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Negotiate { .. } => "negotiate",
            Reply::Accept => "accept",
            Reply::Continue => "continue",
            Reply::Discard => "discard",
            Reply::Reject => "reject",
            Reply::Tempfail => "tempfail",
            Reply::ReplyCode(c) if c.starts_with('4') => "replycode_4xx",
            Reply::ReplyCode(_) => "replycode_5xx",
            Reply::Skip => "skip",
            Reply::Progress => "progress",
            Reply::ConnFail => "connfail",
            Reply::AddHeader { .. } => "add_header",
            Reply::InsertHeader { .. } => "insert_header",
            Reply::ChangeHeader { .. } => "change_header",
            Reply::Quarantine(_) => "quarantine",
            Reply::ReplaceBody(_) => "replace_body",
            Reply::AddRcpt(_) => "add_rcpt",
            Reply::DelRcpt(_) => "del_rcpt",
            Reply::ChangeFrom(_) => "change_from",
            Reply::SetSymList => "setsymlist",
        }
    }
}

fn be32(b: &[u8]) -> Result<u32> {
    let a: [u8; 4] = b.get(..4).ok_or_else(|| anyhow!("short frame"))?.try_into()?;
    Ok(u32::from_be_bytes(a))
}

/// NUL-terminated strings of a payload (a trailing string without NUL is accepted).
fn cstrings(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|c| *c == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

fn name_value(b: &[u8]) -> Result<(String, String)> {
    let mut it = cstrings(b).into_iter();
    match (it.next(), it.next()) {
        (Some(n), v) => Ok((n, v.unwrap_or_default())),
        _ => bail!("header action without a name"),
    }
}

/// Decodes one reply from its command byte and payload.
pub fn decode_reply(code: u8, p: &[u8]) -> Result<Reply> {
    Ok(match code {
        b'O' => {
            if p.len() < 12 {
                bail!("negotiation reply of {} bytes", p.len());
            }
            let mut macros = Vec::new();
            let mut rest = &p[12..];
            while rest.len() >= 4 {
                let stage = be32(rest)?;
                rest = &rest[4..];
                let end = rest.iter().position(|c| *c == 0).unwrap_or(rest.len());
                macros.push((stage, String::from_utf8_lossy(&rest[..end]).into_owned()));
                rest = rest.get(end + 1..).unwrap_or(&[]);
            }
            Reply::Negotiate { version: be32(p)?, actions: be32(&p[4..])?, protocol: be32(&p[8..])?, macros }
        }
        b'a' => Reply::Accept,
        b'c' => Reply::Continue,
        b'd' => Reply::Discard,
        b'r' => Reply::Reject,
        b't' => Reply::Tempfail,
        b's' => Reply::Skip,
        b'p' => Reply::Progress,
        b'f' => Reply::ConnFail,
        b'l' => Reply::SetSymList,
        b'y' => {
            let text = cstrings(p).into_iter().next().unwrap_or_default();
            let ok = text.len() >= 3 && text.as_bytes()[..3].iter().all(u8::is_ascii_digit) && matches!(text.as_bytes()[0], b'4' | b'5');
            if !ok {
                bail!("reply code {text:?} is not 4xx/5xx");
            }
            Reply::ReplyCode(text)
        }
        b'h' => {
            let (name, value) = name_value(p)?;
            Reply::AddHeader { name, value }
        }
        b'i' | b'm' => {
            let index = be32(p)?;
            let (name, value) = name_value(&p[4..])?;
            if code == b'i' {
                Reply::InsertHeader { index, name, value }
            } else {
                Reply::ChangeHeader { index, name, value }
            }
        }
        b'q' => Reply::Quarantine(cstrings(p).into_iter().next().unwrap_or_default()),
        b'b' => Reply::ReplaceBody(p.len()),
        b'+' | b'2' => Reply::AddRcpt(cstrings(p).into_iter().next().unwrap_or_default()),
        b'-' => Reply::DelRcpt(cstrings(p).into_iter().next().unwrap_or_default()),
        b'e' => Reply::ChangeFrom(cstrings(p).into_iter().next().unwrap_or_default()),
        other => bail!("unknown reply code {:?} (0x{other:02x})", other as char),
    })
}

/// Splits one complete frame off the front of `buf` (for tests and tools that buffer replies): Some((code, payload, frame length)).
#[cfg_attr(not(test), allow(dead_code))]
pub fn split_frame(buf: &[u8]) -> Result<Option<(u8, &[u8], usize)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = be32(buf)? as usize;
    if len == 0 || len > MAX_FRAME {
        bail!("frame length {len} out of range");
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((buf[4], &buf[5..4 + len], 4 + len)))
}

// ---------------------------------------------------------------------------------------------
// Messages

/// One .eml file, split for the milter.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub name: String,
    /// (name, value with its leading whitespace, folded lines joined by "\r\n").
    pub headers: Vec<(String, String)>,
    /// Body with CRLF line ends.
    pub body: Vec<u8>,
    pub client_ip: Option<IpAddr>,
    pub helo: Option<String>,
    pub mail_from: Option<String>,
    pub rcpt: Vec<String>,
}

fn to_crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 40);
    let mut prev = 0u8;
    for &c in b {
        if c == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// The address inside `<...>`, else the last word containing '@'.
fn address_of(v: &str) -> Option<String> {
    if let (Some(a), Some(b)) = (v.rfind('<'), v.rfind('>')) {
        if a < b {
            return Some(v[a + 1..b].trim().to_string());
        }
    }
    v.split(|c: char| c.is_whitespace() || c == ',').find(|w| w.contains('@')).map(|w| w.trim_matches(['"', '(', ')']).to_string())
}

/// Parses an .eml: header fields (unfolded into name/value, continuation lines kept),
/// body with CRLF line ends, envelope hints.
pub fn parse_eml(name: &str, raw: &[u8]) -> Message {
    let raw = to_crlf(raw);
    let (head, body) = match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&raw[..i + 2], raw[i + 4..].to_vec()),
        None if raw.starts_with(b"\r\n") => (&raw[..0], raw[2..].to_vec()),
        None => (&raw[..], Vec::new()),
    };
    let mut m = Message { name: name.to_string(), body, ..Default::default() };
    let text = String::from_utf8_lossy(head);
    for line in text.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = m.headers.last_mut() {
                v.push_str("\r\n");
                v.push_str(line.trim_end_matches("\r\n"));
            }
            continue;
        }
        let line = line.trim_end_matches("\r\n");
        if let Some((n, v)) = line.split_once(':') {
            m.headers.push((n.trim_end().to_string(), v.to_string()));
        }
    }
    // envelope: optional X-Bench-Envelope (consumed), Return-Path, From
    if let Some(i) = m.headers.iter().position(|(n, _)| n.eq_ignore_ascii_case("X-Bench-Envelope")) {
        let (_, v) = m.headers.remove(i);
        for kv in v.split_whitespace() {
            match kv.split_once('=') {
                Some(("ip", x)) => m.client_ip = x.parse().ok(),
                Some(("helo", x)) => m.helo = Some(x.to_string()),
                Some(("from", x)) => m.mail_from = Some(x.trim_matches(['<', '>']).to_string()),
                Some(("to", x)) => m.rcpt.extend(x.split(',').map(|r| r.trim_matches(['<', '>']).to_string())),
                _ => {}
            }
        }
    }
    if m.mail_from.is_none() {
        let find = |h: &str| m.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(h)).and_then(|(_, v)| address_of(v));
        m.mail_from = find("Return-Path").or_else(|| find("From"));
    }
    m
}

/// Loads every regular file of the given paths (directories: their files, sorted, not recursive).
pub fn load_messages(paths: &[PathBuf]) -> Result<Vec<Message>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let raw = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        out.push(parse_eml(&f.display().to_string(), &raw));
    }
    if out.is_empty() {
        bail!("no messages in {:?}", paths);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Value at quantile q (0..=1) of sorted samples, nearest rank.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Default)]
struct ConnStats {
    eom_latency: Vec<Duration>,
    msg_latency: Vec<Duration>,
    finals: BTreeMap<&'static str, u64>,
    actions: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    connections: u64,
    bytes: u64,
}

impl ConnStats {
    fn merge(&mut self, o: ConnStats) {
        self.eom_latency.extend(o.eom_latency);
        self.msg_latency.extend(o.msg_latency);
        for (k, v) in o.finals {
            *self.finals.entry(k).or_default() += v;
        }
        for (k, v) in o.actions {
            *self.actions.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.connections += o.connections;
        self.bytes += o.bytes;
    }
    fn error(&mut self, e: &anyhow::Error) {
        // group by the first line of the error, without numbers that vary
        let s = format!("{e:#}");
        *self.errors.entry(s.lines().next().unwrap_or("error").to_string()).or_default() += 1;
    }
}

#[derive(Debug, Serialize)]
struct Report {
    socket: String,
    connections: usize,
    messages_sent: u64,
    messages_with_final_reply: u64,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    milter_connections: u64,
    seconds: f64,
    msgs_per_sec: f64,
    mbytes_per_sec: f64,
    eom_ms: Latency,
    message_ms: Latency,
    final_replies: BTreeMap<&'static str, u64>,
    actions: BTreeMap<&'static str, u64>,
    negotiated_protocol: String,
    negotiated_actions: String,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn latency(v: &mut [Duration]) -> Latency {
    v.sort_unstable();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let mean = if v.is_empty() { 0.0 } else { v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len() as f64 };
    Latency {
        p50: ms(percentile(v, 0.50)),
        p90: ms(percentile(v, 0.90)),
        p99: ms(percentile(v, 0.99)),
        max: ms(v.last().copied().unwrap_or_default()),
        mean: (mean * 1e6).round() / 1e3,
    }
}

// ---------------------------------------------------------------------------------------------
// The MTA side of one connection

#[derive(Parser, Debug, Clone)]
#[command(name = "milter-bench", about = "Milter load driver: plays the MTA side of milter protocol 6")]
struct Args {
    /// Milter address: inet:HOST:PORT, inet:PORT@HOST, or unix:PATH
    #[arg(short, long, default_value = "inet:127.0.0.1:7357")]
    socket: String,
    /// Concurrent milter connections
    #[arg(short = 'c', long, default_value_t = 4)]
    connections: usize,
    /// Messages in total (spread over the connections)
    #[arg(short = 'n', long, default_value_t = 1000)]
    messages: usize,
    /// Messages per milter connection before it is closed and a new one opened (as one SMTP session)
    #[arg(long, default_value_t = 10)]
    per_conn: usize,
    /// Messages sent first over one connection and not counted (warms caches)
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Client IP reported in SMFIC_CONNECT (default for files without X-Bench-Envelope)
    #[arg(long, default_value = "203.0.113.7")]
    client_ip: IpAddr,
    /// Client host name ("[UNAVAILABLE]"-style names are fine)
    #[arg(long, default_value = "unknown")]
    client_name: String,
    #[arg(long, default_value = "client.example.test")]
    helo: String,
    /// MAIL FROM for every message (default: Return-Path or From of each file)
    #[arg(long)]
    mail_from: Option<String>,
    #[arg(long, default_value = "bob@rcpt.example")]
    rcpt: String,
    /// Reply timeout per command, milliseconds
    #[arg(long, default_value_t = 30000)]
    timeout_ms: u64,
    /// Do not set TCP_NODELAY on our side (Postfix does not set it on milter sockets)
    #[arg(long)]
    no_nodelay: bool,
    /// Runtime worker threads of the driver (keep it small: it shares the CPUs with the milter)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Machine-readable report
    #[arg(long)]
    json: bool,
    /// .eml files or directories of them
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

enum Addr {
    Inet(String),
    Unix(PathBuf),
}

fn parse_addr(s: &str) -> Result<Addr> {
    if let Some(p) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
        return Ok(Addr::Unix(PathBuf::from(p)));
    }
    if let Some(a) = s.strip_prefix("inet:").or_else(|| s.strip_prefix("inet6:")) {
        // Sendmail style PORT@HOST
        if let Some((port, host)) = a.split_once('@') {
            return Ok(Addr::Inet(format!("{host}:{port}")));
        }
        return Ok(Addr::Inet(a.to_string()));
    }
    if Path::new(s).is_absolute() {
        return Ok(Addr::Unix(PathBuf::from(s)));
    }
    bail!("milter address {s:?}: expected inet:HOST:PORT or unix:PATH")
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn open(addr: &Addr, nodelay: bool) -> Result<Box<dyn Stream>> {
    Ok(match addr {
        Addr::Inet(a) => {
            let s = tokio::net::TcpStream::connect(a).await.with_context(|| format!("connect {a}"))?;
            s.set_nodelay(nodelay)?;
            Box::new(s)
        }
        Addr::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await.with_context(|| format!("connect {}", p.display()))?),
    })
}

struct Conn {
    io: BufReader<Box<dyn Stream>>,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
    protocol: u32,
    actions: u32,
    timeout: Duration,
}

/// What happened to a message before end of message.
enum Early {
    /// The milter ended the message at this stage (final reply kind).
    Ended(&'static str),
}

impl Conn {
    async fn send(&mut self) -> Result<()> {
        self.io.get_mut().write_all(&self.buf).await?;
        self.buf.clear();
        Ok(())
    }

    async fn read_frame(&mut self) -> Result<Reply> {
        let timeout = self.timeout;
        let fut = async {
            let mut len = [0u8; 4];
            self.io.read_exact(&mut len).await.context("connection closed by the milter")?;
            let len = u32::from_be_bytes(len) as usize;
            if len == 0 || len > MAX_FRAME {
                bail!("frame length {len} out of range");
            }
            self.rbuf.resize(len, 0);
            self.io.read_exact(&mut self.rbuf).await.context("connection closed inside a frame")?;
            decode_reply(self.rbuf[0], &self.rbuf[1..])
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| anyhow!("reply timeout"))?
    }

    /// Sends the buffered frames and reads the stage's reply (ignoring progress).
    async fn round_trip(&mut self) -> Result<Reply> {
        self.send().await?;
        loop {
            let r = self.read_frame().await?;
            match r {
                Reply::Progress => continue,
                r if r.is_final() => return Ok(r),
                r => bail!("unexpected {} before end of message", r.kind()),
            }
        }
    }

    fn off(&self, flag: u32) -> bool {
        self.protocol & flag != 0
    }

    async fn negotiate(&mut self) -> Result<()> {
        put_optneg(&mut self.buf, ALL_ACTIONS, pf::OFFER);
        self.send().await?;
        match self.read_frame().await? {
            Reply::Negotiate { version, actions, protocol, .. } => {
                if !(2..=VERSION).contains(&version) {
                    bail!("milter speaks protocol version {version}");
                }
                if protocol & !pf::OFFER != 0 {
                    bail!("milter asks for protocol flags 0x{:x} we did not offer", protocol & !pf::OFFER);
                }
                self.protocol = protocol;
                self.actions = actions;
                Ok(())
            }
            r => bail!("expected a negotiation reply, got {}", r.kind()),
        }
    }

    /// A stage: macros + command; waits for the reply unless the milter declined it.
    /// Returns Some(kind) when the milter ended the message (or connection) here.
    async fn stage(&mut self, no: u32, nr: u32) -> Result<Option<&'static str>> {
        if no != 0 && self.off(no) {
            self.buf.clear();
            return Ok(None);
        }
        if nr != 0 && self.off(nr) {
            // as Postfix does: events without a reply stay in the stream buffer, written when
            // it fills or before the next read
            if self.buf.len() >= WRITE_BUFFER {
                self.send().await?;
            }
            return Ok(None);
        }
        match self.round_trip().await? {
            Reply::Continue => Ok(None),
            r => Ok(Some(r.kind())),
        }
    }

    async fn connect(&mut self, a: &Args, m: &Message, conn_no: usize) -> Result<Option<&'static str>> {
        put_macros(
            &mut self.buf,
            cmd::CONNECT,
            &[
                ("j", "mta.example.test"),
                ("{daemon_name}", "milter-bench"),
                ("{daemon_addr}", "127.0.0.1"),
                ("v", "Postfix 3.7 (milter-bench)"),
                ("_", "unknown [203.0.113.7]"),
            ],
        );
        let ip = m.client_ip.unwrap_or(a.client_ip);
        put_connect(&mut self.buf, &a.client_name, Some(ip), 40000 + (conn_no % 20000) as u16);
        self.stage(pf::NOCONNECT, pf::NR_CONN).await
    }

    async fn helo(&mut self, helo: &str) -> Result<Option<&'static str>> {
        put_strings(&mut self.buf, cmd::HELO, &[helo.as_bytes()]);
        self.stage(pf::NOHELO, pf::NR_HELO).await
    }

    /// One message, MAIL FROM to the final end-of-message reply.
    async fn message(&mut self, a: &Args, m: &Message, qid: &str, st: &mut ConnStats) -> Result<std::result::Result<(), Early>> {
        let t0 = Instant::now();
        let from = a.mail_from.clone().or_else(|| m.mail_from.clone()).unwrap_or_default();
        let client = m.client_ip.unwrap_or(a.client_ip).to_string();
        put_macros(
            &mut self.buf,
            cmd::MAIL,
            &[("i", qid), ("{mail_addr}", &from), ("{client_addr}", &client), ("{client_name}", &a.client_name)],
        );
        put_strings(&mut self.buf, cmd::MAIL, &[format!("<{from}>").as_bytes(), b"SIZE=20480"]);
        if let Some(k) = self.stage(pf::NOMAIL, pf::NR_MAIL).await? {
            return Ok(Err(Early::Ended(k)));
        }
        let default_rcpt = [a.rcpt.clone()];
        let rcpts: &[String] = if m.rcpt.is_empty() { &default_rcpt } else { &m.rcpt };
        let mut accepted = 0;
        let mut last = "reject";
        for r in rcpts {
            put_macros(&mut self.buf, cmd::RCPT, &[("{rcpt_addr}", r), ("{rcpt_host}", "127.0.0.1"), ("{rcpt_mailer}", "smtp")]);
            put_strings(&mut self.buf, cmd::RCPT, &[format!("<{r}>").as_bytes()]);
            match self.stage(pf::NORCPT, pf::NR_RCPT).await? {
                None => accepted += 1,
                Some("accept") => return Ok(Err(Early::Ended("accept"))),
                Some(k) => last = k,
            }
        }
        if accepted == 0 {
            return Ok(Err(Early::Ended(last)));
        }
        // Postfix's SMTP server hands the milter connection to its cleanup server here: flushed
        self.send().await?;
        put_macros(&mut self.buf, cmd::DATA, &[("i", qid)]);
        put_frame(&mut self.buf, cmd::DATA, &[]);
        if let Some(k) = self.stage(pf::NODATA, pf::NR_DATA).await? {
            return Ok(Err(Early::Ended(k)));
        }
        let leadspc = self.off(pf::HDR_LEADSPC);
        if !self.off(pf::NOHDRS) {
            for (n, v) in &m.headers {
                let v = if leadspc { v.as_str() } else { v.trim_start_matches([' ', '\t']) };
                put_macros(&mut self.buf, cmd::HEADER, &[("i", qid)]);
                put_strings(&mut self.buf, cmd::HEADER, &[n.as_bytes(), v.as_bytes()]);
                if let Some(k) = self.stage(0, pf::NR_HDR).await? {
                    if k == "skip" {
                        bail!("skip in reply to a header");
                    }
                    return Ok(Err(Early::Ended(k)));
                }
            }
        }
        put_macros(&mut self.buf, cmd::EOH, &[("i", qid)]);
        put_frame(&mut self.buf, cmd::EOH, &[]);
        if let Some(k) = self.stage(pf::NOEOH, pf::NR_EOH).await? {
            return Ok(Err(Early::Ended(k)));
        }
        if !self.off(pf::NOBODY) {
            for chunk in m.body.chunks(CHUNK) {
                put_macros(&mut self.buf, cmd::BODY, &[("i", qid)]);
                put_frame(&mut self.buf, cmd::BODY, chunk);
                match self.stage(0, pf::NR_BODY).await? {
                    None => {}
                    Some("skip") => break,
                    Some(k) => return Ok(Err(Early::Ended(k))),
                }
            }
        }
        put_macros(&mut self.buf, cmd::EOB, &[("i", qid)]);
        put_frame(&mut self.buf, cmd::EOB, &[]);
        st.bytes += m.body.len() as u64;
        let t_eom = Instant::now();
        self.send().await?;
        loop {
            let r = self.read_frame().await?;
            match r {
                Reply::Progress => continue,
                Reply::Skip => bail!("skip in reply to end of message"),
                r if r.is_final() => {
                    let now = Instant::now();
                    st.eom_latency.push(now - t_eom);
                    st.msg_latency.push(now - t0);
                    *st.finals.entry(r.kind()).or_default() += 1;
                    return Ok(Ok(()));
                }
                Reply::Negotiate { .. } | Reply::SetSymList => bail!("unexpected {} at end of message", r.kind()),
                r => {
                    let needs = match &r {
                        Reply::AddHeader { .. } => 0x1,
                        Reply::ReplaceBody(_) => 0x2,
                        Reply::AddRcpt(_) => 0x4 | 0x80,
                        Reply::DelRcpt(_) => 0x8,
                        Reply::InsertHeader { .. } | Reply::ChangeHeader { .. } => 0x10 | 0x1,
                        Reply::Quarantine(_) => 0x20,
                        Reply::ChangeFrom(_) => 0x40,
                        _ => 0,
                    };
                    if needs != 0 && self.actions & needs == 0 {
                        bail!("{} without negotiating it", r.kind());
                    }
                    *st.actions.entry(r.kind()).or_default() += 1;
                }
            }
        }
    }

    /// After a message the milter ended early, the MTA aborts the transaction.
    async fn abort(&mut self) -> Result<()> {
        put_frame(&mut self.buf, cmd::ABORT, &[]);
        self.send().await
    }

    async fn quit(&mut self) -> Result<()> {
        put_frame(&mut self.buf, cmd::QUIT, &[]);
        self.send().await?;
        let _ = self.io.get_mut().shutdown().await;
        Ok(())
    }
}

struct Shared {
    args: Args,
    addr: Addr,
    msgs: Vec<Message>,
    next: AtomicUsize,
    total: usize,
    negotiated: std::sync::Mutex<Option<(u32, u32)>>,
}

/// One worker: opens connections and sends messages until the shared counter reaches `total`.
async fn worker(sh: Arc<Shared>, wid: usize) -> ConnStats {
    let mut st = ConnStats::default();
    let mut conn_no = wid;
    let mut pending: Option<usize> = None;
    loop {
        let first = match pending.take() {
            Some(i) => i,
            None => {
                let i = sh.next.fetch_add(1, Ordering::Relaxed);
                if i >= sh.total {
                    return st;
                }
                i
            }
        };
        conn_no += 1000;
        match session(&sh, first, conn_no, &mut st).await {
            Ok(()) => {}
            Err((e, unsent)) => {
                st.error(&e);
                // a message whose connection failed before its final reply is lost, not retried
                let _ = unsent;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// One milter connection carrying up to `per_conn` messages, the first one being `first`.
async fn session(sh: &Shared, first: usize, conn_no: usize, st: &mut ConnStats) -> std::result::Result<(), (anyhow::Error, usize)> {
    let a = &sh.args;
    let io = open(&sh.addr, !a.no_nodelay).await.map_err(|e| (e, first))?;
    st.connections += 1;
    let mut c = Conn {
        io: BufReader::with_capacity(64 * 1024, io),
        buf: Vec::with_capacity(80 * 1024),
        rbuf: Vec::with_capacity(1024),
        protocol: 0,
        actions: 0,
        timeout: Duration::from_millis(a.timeout_ms),
    };
    c.negotiate().await.map_err(|e| (e.context("negotiation"), first))?;
    if let Ok(mut n) = sh.negotiated.lock() {
        n.get_or_insert((c.protocol, c.actions));
    }
    let m0 = &sh.msgs[first % sh.msgs.len()];
    if let Some(k) = c.connect(a, m0, conn_no).await.map_err(|e| (e.context("connect stage"), first))? {
        // the whole connection is refused: the message gets that reply
        *st.finals.entry(k).or_default() += 1;
        let _ = c.quit().await;
        return Ok(());
    }
    let helo = m0.helo.clone().unwrap_or_else(|| a.helo.clone());
    let mut ended_at_helo = None;
    if let Some(k) = c.helo(&helo).await.map_err(|e| (e.context("helo stage"), first))? {
        ended_at_helo = Some(k);
    }
    let mut i = first;
    let mut n = 0;
    loop {
        let m = &sh.msgs[i % sh.msgs.len()];
        if let Some(k) = ended_at_helo {
            *st.finals.entry(k).or_default() += 1;
        } else {
            let qid = format!("B{conn_no:X}N{n:X}");
            match c.message(a, m, &qid, st).await {
                Ok(Ok(())) => {}
                Ok(Err(Early::Ended(k))) => {
                    *st.finals.entry(k).or_default() += 1;
                    c.abort().await.map_err(|e| (e, i))?;
                }
                Err(e) => return Err((e.context(format!("message {}", m.name)), i)),
            }
        }
        n += 1;
        if n >= a.per_conn.max(1) {
            break;
        }
        i = sh.next.fetch_add(1, Ordering::Relaxed);
        if i >= sh.total {
            break;
        }
    }
    c.quit().await.map_err(|e| (e, i))?;
    Ok(())
}

async fn run(args: Args) -> Result<Report> {
    let addr = parse_addr(&args.socket)?;
    let msgs = load_messages(&args.paths)?;
    let total = args.messages;
    if args.warmup > 0 {
        let warm = Arc::new(Shared {
            args: Args { per_conn: args.warmup, ..args.clone() },
            addr: parse_addr(&args.socket)?,
            msgs: msgs.clone(),
            next: AtomicUsize::new(0),
            total: args.warmup,
            negotiated: Default::default(),
        });
        let st = worker(warm, 0).await;
        if !st.errors.is_empty() {
            bail!("warm-up failed: {:?}", st.errors);
        }
    }
    let sh = Arc::new(Shared { args: args.clone(), addr, msgs, next: AtomicUsize::new(0), total, negotiated: Default::default() });
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.connections.max(1) {
        tasks.push(tokio::spawn(worker(sh.clone(), w)));
    }
    let mut st = ConnStats::default();
    for t in tasks {
        st.merge(t.await?);
    }
    let secs = t0.elapsed().as_secs_f64();
    let finals: u64 = st.finals.values().sum();
    let errors: u64 = st.errors.values().sum();
    let (proto, acts) = sh.negotiated.lock().ok().and_then(|g| *g).unwrap_or_default();
    let mut eom = std::mem::take(&mut st.eom_latency);
    let mut msg = std::mem::take(&mut st.msg_latency);
    Ok(Report {
        socket: args.socket.clone(),
        connections: args.connections,
        messages_sent: total as u64,
        messages_with_final_reply: finals,
        errors,
        error_kinds: st.errors,
        milter_connections: st.connections,
        seconds: (secs * 1000.0).round() / 1000.0,
        msgs_per_sec: (finals as f64 / secs).round(),
        mbytes_per_sec: ((st.bytes as f64 / secs / 1e6) * 100.0).round() / 100.0,
        eom_ms: latency(&mut eom),
        message_ms: latency(&mut msg),
        final_replies: st.finals,
        actions: st.actions,
        negotiated_protocol: format!("0x{proto:x}"),
        negotiated_actions: format!("0x{acts:x}"),
    })
}

fn print_text(r: &Report) {
    println!(
        "milter-bench {}: {} msgs over {} connections ({} milter connections) in {:.3} s = {} msgs/s ({} MB/s body)",
        r.socket, r.messages_with_final_reply, r.connections, r.milter_connections, r.seconds, r.msgs_per_sec, r.mbytes_per_sec
    );
    let l = &r.eom_ms;
    println!("  eom reply latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}", l.p50, l.p90, l.p99, l.max, l.mean);
    let l = &r.message_ms;
    println!("  whole message ms:     p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}", l.p50, l.p90, l.p99, l.max, l.mean);
    let f: Vec<String> = r.final_replies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("  final replies: {}", if f.is_empty() { "none".into() } else { f.join(" ") });
    let a: Vec<String> = r.actions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("  actions at eom: {}", if a.is_empty() { "none".into() } else { a.join(" ") });
    println!("  negotiated: protocol {} actions {}", r.negotiated_protocol, r.negotiated_actions);
    println!("  errors: {}", r.errors);
    for (k, v) in &r.error_kinds {
        println!("    {v} x {k}");
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    let json = args.json;
    let report = rt.block_on(run(args))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if report.errors > 0 || report.messages_with_final_reply < report.messages_sent {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_length_prefixed_with_the_command_byte() {
        let mut b = Vec::new();
        put_frame(&mut b, cmd::EOH, &[]);
        assert_eq!(b, [0, 0, 0, 1, b'N']);
        b.clear();
        put_strings(&mut b, cmd::HEADER, &[b"Subject", b"hi"]);
        assert_eq!(b, b"\0\0\0\x0cLSubject\0hi\0");
        b.clear();
        put_macros(&mut b, cmd::MAIL, &[("i", "Q1")]);
        assert_eq!(b, b"\0\0\0\x07DMi\0Q1\0");
        b.clear();
        put_optneg(&mut b, ALL_ACTIONS, pf::OFFER);
        assert_eq!(b, [0, 0, 0, 13, b'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff]);
    }

    #[test]
    fn connect_carries_family_port_and_address() {
        let mut b = Vec::new();
        put_connect(&mut b, "host", Some("203.0.113.7".parse().unwrap()), 25);
        assert_eq!(&b[4..], b"Chost\x004\x00\x19203.0.113.7\0");
        assert_eq!(u32::from_be_bytes(b[..4].try_into().unwrap()) as usize, b.len() - 4);
        b.clear();
        put_connect(&mut b, "h", None, 0);
        assert_eq!(&b[4..], b"Ch\0U");
    }

    #[test]
    fn frames_split_only_when_complete() {
        let mut b = Vec::new();
        put_frame(&mut b, b'c', &[]);
        put_strings(&mut b, b'h', &[b"X-A", b"1"]);
        let (code, p, n) = split_frame(&b).unwrap().unwrap();
        assert_eq!((code, p, n), (b'c', &[][..], 5));
        let (code, p, n2) = split_frame(&b[n..]).unwrap().unwrap();
        assert_eq!(decode_reply(code, p).unwrap(), Reply::AddHeader { name: "X-A".into(), value: "1".into() });
        assert_eq!(n + n2, b.len());
        assert!(split_frame(&b[n..b.len() - 1]).unwrap().is_none());
        assert!(split_frame(&[0, 0, 0, 0]).is_err());
    }

    #[test]
    fn replies_decode() {
        let mut p = Vec::new();
        p.extend_from_slice(&6u32.to_be_bytes());
        p.extend_from_slice(&0x31u32.to_be_bytes());
        p.extend_from_slice(&0x100u32.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(b"j {client_addr}\0");
        assert_eq!(
            decode_reply(b'O', &p).unwrap(),
            Reply::Negotiate { version: 6, actions: 0x31, protocol: 0x100, macros: vec![(1, "j {client_addr}".into())] }
        );
        let mut ins = 0u32.to_be_bytes().to_vec();
        ins.extend_from_slice(b"Authentication-Results\0mx; spf=pass\0");
        assert_eq!(
            decode_reply(b'i', &ins).unwrap(),
            Reply::InsertHeader { index: 0, name: "Authentication-Results".into(), value: "mx; spf=pass".into() }
        );
        let mut chg = 1u32.to_be_bytes().to_vec();
        chg.extend_from_slice(b"X-Impostor-Verdict\0\0");
        assert_eq!(
            decode_reply(b'm', &chg).unwrap(),
            Reply::ChangeHeader { index: 1, name: "X-Impostor-Verdict".into(), value: "".into() }
        );
        assert_eq!(decode_reply(b'q', b"phish\0").unwrap(), Reply::Quarantine("phish".into()));
        assert_eq!(decode_reply(b'y', b"550 5.7.1 no\0").unwrap().kind(), "replycode_5xx");
        assert_eq!(decode_reply(b'y', b"451 4.7.1 later\0").unwrap().kind(), "replycode_4xx");
        assert!(decode_reply(b'y', b"250 ok\0").is_err());
        assert_eq!(decode_reply(b'b', b"abc").unwrap(), Reply::ReplaceBody(3));
        assert!(decode_reply(b'a', &[]).unwrap().is_final());
        assert!(!decode_reply(b'h', b"A\0b\0").unwrap().is_final());
        assert!(decode_reply(b'Z', &[]).is_err());
    }

    #[test]
    fn eml_is_split_into_headers_crlf_body_and_envelope() {
        let raw = b"X-Bench-Envelope: ip=192.0.2.1 helo=mx.a.example to=x@y.example,z@y.example\nFrom: \"A\" <a@b.example>\nSubject: one\n two\n\nline1\nline2\r\n";
        let m = parse_eml("t", raw);
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.headers[0], ("From".into(), " \"A\" <a@b.example>".into()));
        assert_eq!(m.headers[1], ("Subject".into(), " one\r\n two".into()));
        assert_eq!(m.body, b"line1\r\nline2\r\n");
        assert_eq!(m.mail_from.as_deref(), Some("a@b.example"));
        assert_eq!(m.client_ip, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(m.helo.as_deref(), Some("mx.a.example"));
        assert_eq!(m.rcpt, vec!["x@y.example", "z@y.example"]);
        let r = parse_eml("r", b"Return-Path: <bounce@c.example>\r\nFrom: a@b.example\r\n\r\n");
        assert_eq!(r.mail_from.as_deref(), Some("bounce@c.example"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn addresses_parse() {
        assert!(matches!(parse_addr("inet:127.0.0.1:7357").unwrap(), Addr::Inet(a) if a == "127.0.0.1:7357"));
        assert!(matches!(parse_addr("inet:8891@127.0.0.1").unwrap(), Addr::Inet(a) if a == "127.0.0.1:8891"));
        assert!(matches!(parse_addr("unix:/run/x.sock").unwrap(), Addr::Unix(p) if p == Path::new("/run/x.sock")));
        assert!(parse_addr("tcp:1").is_err());
    }
}
