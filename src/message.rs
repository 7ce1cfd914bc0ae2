//! The SMTP envelope of a message, as the MTA reported it. A leaf.

use serde::Serialize;
use std::net::IpAddr;

/// SMTP envelope and connection data as the MTA reported them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Envelope {
    pub client_ip: Option<IpAddr>,
    pub client_name: Option<String>,
    pub helo: Option<String>,
    /// MAIL FROM address without angle brackets; empty for the null sender.
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    pub queue_id: Option<String>,
    /// `{auth_authen}`: the SASL login of an authenticated submission.
    pub auth_authen: Option<String>,
}

/// Drops a parsed message without recursion. mail-parser parses attached messages
/// (`message/rfc822` inside `message/rfc822` …) iteratively, however deep, but the parsed tree
/// drops recursively, one stack frame set per level: a message nested 30,000 deep (a few
/// hundred kilobytes) would overflow the stack, which no `catch_unwind` can catch. This takes
/// every attached message out of its part first, so each one is dropped flat.
pub fn drop_flat(msg: mail_parser::Message<'_>) {
    let mut stack = vec![msg];
    while let Some(mut m) = stack.pop() {
        for part in m.parts.iter_mut() {
            if let mail_parser::PartType::Message(_) = part.body {
                if let mail_parser::PartType::Message(inner) =
                    std::mem::replace(&mut part.body, mail_parser::PartType::Multipart(Vec::new()))
                {
                    stack.push(inner);
                }
            }
        }
        drop(m);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_attached_100000_deep_drops_without_overflowing_the_stack() {
        let mut raw = Vec::new();
        for _ in 0..100_000 {
            raw.extend_from_slice(b"From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"From: a@example.com\r\nSubject: bottom\r\n\r\nbody\r\n");
        let msg = mail_parser::MessageParser::default().parse(&raw).expect("parses");
        super::drop_flat(msg);
    }
}
