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

/// The parser the analysis uses: mail-parser's own choice of parser for every
/// header field it knows, except `Received`, kept raw. Its structured parse
/// costs more than any other field's, and nothing here reads it (the relay
/// chain is read from the raw fields, `auth::received_by`).
pub fn parser() -> &'static mail_parser::MessageParser {
    use mail_parser::{HeaderName as H, MessageParser};
    static P: std::sync::OnceLock<MessageParser> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let mut p = MessageParser::new().with_mime_headers().with_date_headers().with_address_headers().with_message_ids();
        for h in [H::ListArchive, H::ListHelp, H::ListId, H::ListOwner, H::ListPost, H::ListSubscribe, H::ListUnsubscribe] {
            p = p.header_address(h);
        }
        p.header_id(H::ReturnPath)
            .header_text(H::Subject)
            .header_text(H::Comments)
            .header_comma_separated(H::Keywords)
            .header_comma_separated(H::ContentLanguage)
            .header_raw(H::MimeVersion)
            .header_raw(H::Received)
            .default_header_raw()
    })
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
    use super::parser;
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

    #[test]
    fn the_analysis_parser_parses_as_the_default_one_except_received() {
        let raw = b"Received: from a.example (a.example [192.0.2.1]) by mx.example with ESMTP id 1; Wed, 2 Dec 2026 06:00:00 +0000\r\n\
From: \"=?utf-8?q?Open=C3=A9?=\" <a@b.example>\r\nReply-To: c@d.example\r\nTo: x@y.example, z@y.example\r\n\
Subject: =?utf-8?q?caf=C3=A9?= now\r\nDate: Wed, 2 Dec 2026 06:00:00 +0000\r\nMessage-ID: <m@b.example>\r\n\
List-Unsubscribe: <mailto:u@b.example>\r\nReturn-Path: <r@b.example>\r\nKeywords: a, b\r\nX-Other: =?utf-8?q?raw?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
        let ours = parser().parse(&raw[..]).unwrap();
        let theirs = mail_parser::MessageParser::default().parse(&raw[..]).unwrap();
        for (a, b) in ours.headers().iter().zip(theirs.headers()) {
            assert_eq!(a.name, b.name);
            if a.name == mail_parser::HeaderName::Received {
                assert!(matches!(a.value, mail_parser::HeaderValue::Text(_)), "{:?}", a.value);
                assert!(matches!(b.value, mail_parser::HeaderValue::Received(_)), "{:?}", b.value);
            } else {
                assert_eq!(a.value, b.value, "{:?}", a.name);
            }
        }
        assert_eq!(ours.headers().len(), theirs.headers().len());
        assert_eq!(ours.parts.len(), theirs.parts.len());
        assert_eq!(ours.subject(), Some("café now"));
    }
}
