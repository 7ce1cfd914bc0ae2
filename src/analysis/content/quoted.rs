//! Quoted and forwarded text: what the sender quotes or forwards is not the
//! sender's own ask. [`split`] parts a text body into the sender's own text
//! and the quoted rest; [`is_separator`] knows the lines mail clients put
//! before a forwarded or replied-to message, in the languages impostor reads.

/// Lines that start a forwarded or original message, lowercased, dashes and spaces trimmed.
const SEPARATORS: &[&str] = &[
    // en
    "forwarded message",
    "begin forwarded message",
    "original message",
    // fr
    "message transféré",
    "message transfere",
    "début du message réexpédié",
    "debut du message reexpedie",
    "message d'origine",
    "message d’origine",
    "message original",
    // es
    "mensaje reenviado",
    "mensaje original",
    "inicio del mensaje reenviado",
    // de
    "weitergeleitete nachricht",
    "ursprüngliche nachricht",
    "anfang der weitergeleiteten nachricht",
    // pt
    "mensagem encaminhada",
    "mensagem original",
    "início da mensagem reencaminhada",
    "inicio da mensagem reencaminhada",
    // it
    "messaggio inoltrato",
    "messaggio originale",
    "inizio messaggio inoltrato",
    // nl
    "doorgestuurd bericht",
    "oorspronkelijk bericht",
    "origineel bericht",
    "begin doorgestuurd bericht",
];

/// The line starts a forwarded or original message ("---------- Forwarded message ---------",
/// "-----Original Message-----", "Début du message réexpédié :", "Begin forwarded message:").
pub fn is_separator(line: &str) -> bool {
    if line.len() > 80 {
        return false;
    }
    let t = line.trim().trim_matches(|c: char| c == '-' || c == '_' || c == '=' || c == ':' || c == '*' || c.is_whitespace());
    if t.is_ascii() {
        // the common case, without a lowercased copy (ASCII lowercases to ASCII of the same length)
        return SEPARATORS.iter().any(|s| s.eq_ignore_ascii_case(t));
    }
    SEPARATORS.contains(&t.to_lowercase().as_str())
}

/// Header names of an Outlook-style quoted header block ("From: … Sent: …"), per language: (from, date).
const HEADER_FROM: &[&str] = &["from", "de", "von", "da", "van"];
const HEADER_DATE: &[&str] =
    &["sent", "date", "envoyé", "envoye", "gesendet", "datum", "enviado", "enviado el", "fecha", "data", "inviato", "verzonden", "to"];

fn header_name(line: &str) -> Option<String> {
    let (name, _) = line.trim_start_matches(['*', '>', ' ']).split_once(':')?;
    let n = name.trim().trim_matches('*').trim();
    // longer than 12 bytes: none of the names above, however it is capitalised (no copy made)
    if n.len() > 12 {
        return None;
    }
    let n = n.to_lowercase();
    (n.len() <= 12).then_some(n)
}

/// The line at `i` begins a quoted header block: a From-like header followed, within two lines, by a Sent/Date/To-like one.
fn header_block(lines: &[&str], i: usize) -> bool {
    let Some(n) = header_name(lines[i]) else { return false };
    if !HEADER_FROM.contains(&n.as_str()) {
        return false;
    }
    lines.iter().skip(i + 1).take(2).filter_map(|l| header_name(l)).any(|n| HEADER_DATE.contains(&n.as_str()))
}

/// Splits a text body into (the sender's own text, quoted text): lines starting
/// with `>` are quoted, and so is everything from a forward / original-message
/// separator or an Outlook header block on. The "On … wrote:" line before a
/// quote stays with the own text (it names who is quoted, it asks nothing).
pub fn split(text: &str) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let mut own = String::with_capacity(text.len());
    let mut quoted = String::new();
    for (i, line) in lines.iter().enumerate() {
        if is_separator(line) || header_block(&lines, i) {
            for l in &lines[i..] {
                quoted.push_str(l.trim_start_matches('>'));
                quoted.push('\n');
            }
            break;
        }
        if line.trim_start().starts_with('>') {
            quoted.push_str(line.trim_start().trim_start_matches(['>', ' ']));
            quoted.push('\n');
        } else {
            own.push_str(line);
            own.push('\n');
        }
    }
    (own, quoted)
}

/// A Subject that forwards another message's subject (`Fwd:`, `FW:`, `TR:`, `WG:`, `RV:`, `I:`, `Enc:`, `Doorst:`).
pub fn forward_subject(subject: &str) -> bool {
    let s = subject.trim_start().to_lowercase();
    ["fwd:", "fw:", "tr:", "wg:", "rv:", "i:", "enc:", "doorst:", "fwd :", "tr :", "fw :"].iter().any(|p| s.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_in_each_language() {
        for l in [
            "---------- Forwarded message ---------",
            "-----Original Message-----",
            "Begin forwarded message:",
            "Début du message réexpédié :",
            "-------- Message transféré --------",
            "---------- Mensaje reenviado ----------",
            "-------- Weitergeleitete Nachricht --------",
            "---------- Mensagem encaminhada ---------",
            "-------- Messaggio inoltrato --------",
            "-------- Doorgestuurd bericht --------",
        ] {
            assert!(is_separator(l), "{l}");
        }
        assert!(!is_separator("Please forward this message to your team"));
        assert!(!is_separator("Original message content follows below, read it"));
    }

    #[test]
    fn split_keeps_own_text_and_quotes_the_rest() {
        let (own, q) = split("FYI, is this real?\n\nOn Mon, Bob wrote:\n> Verify your password now\n> thanks\nmy note\n");
        assert!(own.contains("FYI") && own.contains("my note") && !own.contains("Verify"));
        assert!(q.contains("Verify your password now"));
        let (own, q) = split("phish below\n\nFrom: OpenAI <x@evil.example>\nSent: Monday\nTo: me\nSubject: key\n\nConfirm your API key\n");
        assert_eq!(own.trim(), "phish below");
        assert!(q.contains("Confirm your API key"));
        let (own, q) = split("Von: A\nGesendet: heute\n\nBestätigen Sie Ihr Passwort");
        assert!(own.is_empty() && q.contains("Passwort"));
        // a single From: line in the body is not a header block
        let (own, q) = split("From: the team\nPlease confirm your password\n");
        assert!(q.is_empty() && own.contains("confirm"));
    }

    #[test]
    fn forward_subjects() {
        assert!(forward_subject("Fwd: Your account"));
        assert!(forward_subject("TR : Votre compte"));
        assert!(forward_subject("WG: Konto"));
        assert!(!forward_subject("Fwdance"));
        assert!(!forward_subject("Your account"));
    }
}
