//! The review page's HTML (maud: compile-time checked, every interpolation escaped), the
//! defanging of links and the stylesheet (served from the binary: no inline style, no script,
//! nothing external, so the Content-Security-Policy can be `default-src 'none'`).

use super::store::{Filter, Selection, Sort, Summary};
use crate::cli::{AuthReport, MethodReport};
use crate::verdict::{fmt_score, Verdict};
use maud::{html, Markup, DOCTYPE};

/// The stylesheet at `/review.css`.
pub const CSS: &str = include_str!("review.css");

/// Rewrites every link so it can neither be clicked nor pasted by accident:
/// `https://evil.example/x` becomes `hxxps://evil[.]example/x`.
pub fn defang(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    let mut last = 0;
    for link in finder.links(text) {
        out.push_str(&text[last..link.start()]);
        out.push_str(&defang_url(link.as_str()));
        last = link.end();
    }
    out.push_str(&text[last..]);
    // schemes linkify did not take for a link (`https://` alone, odd hosts)
    let mut res = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.to_ascii_lowercase().find("http") {
        let after = &rest[i + 4..];
        let scheme_len = if after.starts_with("://") {
            3
        } else if after.len() >= 4 && after[..4].eq_ignore_ascii_case("s://") {
            4
        } else {
            0
        };
        res.push_str(&rest[..i]);
        if scheme_len > 0 {
            res.push_str("hxxp");
        } else {
            res.push_str(&rest[i..i + 4]);
        }
        rest = after;
    }
    res.push_str(rest);
    res
}

fn defang_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i], &url[i + 3..]),
        None => ("", url),
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(host_end);
    let host = host.replace('.', "[.]");
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "hxxp".to_string(),
        "https" => "hxxps".to_string(),
        "" => String::new(),
        s => s.replace('t', "x"),
    };
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
pub fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn layout(title: &str, who: Option<&str>, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · impostor review" }
                link rel="stylesheet" href="/review.css";
            }
            body {
                header {
                    a.brand href="/" { "impostor · quarantine review" }
                    @if let (Some(who), Some(csrf)) = (who, csrf) {
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            span.who { "signed in as " (who) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form; `csrf` is also in the `impostor_login` cookie (double submit).
pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        None,
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Access token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Log in" }
            }
            p.hint { "A token of review.token_file (" code { "impostor review --init-token" } " makes one)." }
        },
    )
}

/// An error page.
pub fn error(title: &str, text: &str) -> Markup {
    layout(title, None, None, html! { h1 { (title) } p.error { (text) } p { a href="/" { "Back to the list" } } })
}

fn query(f: &Filter, page: usize, sort: Sort) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("brand", &f.brand), ("rule", &f.rule), ("domain", &f.domain)] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    let s = match sort {
        Sort::Time => "time",
        Sort::Oldest => "oldest",
        Sort::Score => "score",
    };
    q.append_pair("sort", s);
    q.append_pair("page", &page.to_string());
    format!("/?{}", q.finish())
}

/// The list view.
pub fn list(who: &str, csrf: &str, f: &Filter, sel: &Selection) -> Markup {
    let sort_link = |s: Sort, label: &str| {
        html! { @if f.sort == s { strong { (label) } } @else { a href=(query(f, 1, s)) { (label) } } }
    };
    layout(
        "Held messages",
        Some(who),
        Some(csrf),
        html! {
            h1 { "Held messages" }
            @if !f.notice.is_empty() { p.notice role="status" { (f.notice) } }
            form.filters method="get" action="/" {
                label { "Brand "
                    select name="brand" {
                        option value="" { "any" }
                        @for b in &sel.brands { option value=(b) selected[f.brand.eq_ignore_ascii_case(b)] { (b) } }
                    }
                }
                label { "Rule "
                    select name="rule" {
                        option value="" { "any" }
                        @for r in &sel.rule_ids { option value=(r) selected[f.rule.eq_ignore_ascii_case(r)] { (r) } }
                    }
                }
                label { "Sender domain " input type="text" name="domain" value=(f.domain) placeholder="example.com"; }
                input type="hidden" name="sort" value=(match f.sort { Sort::Time => "time", Sort::Oldest => "oldest", Sort::Score => "score" });
                button type="submit" { "Filter" }
                " " a href="/" { "clear" }
            }
            p.count { (sel.matched) " of " (sel.total) " held message(s) · sort: "
                (sort_link(Sort::Time, "newest")) " · " (sort_link(Sort::Oldest, "oldest")) " · " (sort_link(Sort::Score, "score")) }
            table.held {
                thead { tr { th { "Time" } th { "Sender domain" } th { "Recipient" } th { "Subject" } th { "Brand" } th.num { "Score" } th { "Rules" } } }
                tbody {
                    @for s in &sel.rows { (row(s)) }
                }
            }
            @if sel.rows.is_empty() { p.empty { "No held message matches." } }
            nav.pages {
                @if sel.page > 1 { a rel="prev" href=(query(f, sel.page - 1, f.sort)) { "← previous" } " " }
                span { "page " (sel.page) " of " (sel.pages) }
                @if sel.page < sel.pages { " " a rel="next" href=(query(f, sel.page + 1, f.sort)) { "next →" } }
            }
        },
    )
}

fn row(s: &Summary) -> Markup {
    html! {
        tr data-queue-id=(s.queue_id) {
            td.time { (fmt_time(s.arrival_time)) }
            td { (defang(&s.sender_domain)) }
            td { (s.recipients.join(", ")) }
            td.subject { a href={ "/message/" (s.queue_id) } { @if s.subject.is_empty() { "(no subject)" } @else { (defang(&s.subject)) } } }
            td { (s.brand.as_deref().unwrap_or("–")) }
            td.num { (s.score.map(fmt_score).unwrap_or_else(|| "–".into())) }
            td.rules { @for r in &s.rules { code { (r) } " " } }
        }
    }
}

/// Everything the message view shows of one held message.
pub struct MessageView {
    pub summary: Summary,
    /// The verdict of the offline analysis with the current configuration.
    pub verdict: Verdict,
    pub auth: AuthReport,
    pub auth_results: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body_text: String,
    /// HTML parts' source, shown as text.
    pub html_source: Vec<String>,
    pub links: Vec<String>,
    /// (file name, content type, bytes).
    pub attachments: Vec<(String, String, usize)>,
}

fn method(name: &str, m: &MethodReport) -> Markup {
    html! {
        tr {
            th { (name) }
            td { (m.result.as_str()) }
            td { (m.domain) @if let Some(s) = &m.selector { " s=" (s) } }
            td { @if m.aligned { "aligned" } }
            td { (m.detail) }
        }
    }
}

/// The message view.
pub fn message(who: &str, csrf: &str, v: &MessageView) -> Markup {
    let s = &v.summary;
    let id = &s.queue_id;
    let action = |path: &str, label: &str, class: &str| {
        html! {
            form.action method="post" action={ "/message/" (id) "/" (path) } {
                input type="hidden" name="csrf" value=(csrf);
                button class=(class) type="submit" { (label) }
            }
        }
    };
    layout(
        &format!("Message {id}"),
        Some(who),
        Some(csrf),
        html! {
            p { a href="/" { "← all held messages" } }
            h1.subject { @if s.subject.is_empty() { "(no subject)" } @else { (defang(&s.subject)) } }
            dl.envelope {
                dt { "Queue id" } dd { code { (id) } }
                dt { "Arrived" } dd { (fmt_time(s.arrival_time)) }
                dt { "Envelope sender" } dd { (defang(&s.sender)) }
                dt { "Recipients" } dd { (s.recipients.join(", ")) }
                dt { "Held as" } dd { (if s.verdict.is_empty() { "(no impostor verdict)" } else { &s.verdict }) " · score " (s.score.map(fmt_score).unwrap_or_else(|| "–".into())) }
                dt { "Brand" } dd { (v.verdict.brand.as_deref().unwrap_or("–")) }
            }
            div.actions {
                (action("release", "Release", "release"))
                (action("release-ham", "Release and report false positive", "release"))
                (action("delete", "Delete", "delete"))
                (action("delete-phish", "Delete and confirm phish", "delete"))
            }
            h2 { "Findings" }
            p { "Offline analysis of the held copy with the current configuration: " strong { (v.verdict.action.to_string()) } ", score " (fmt_score(v.verdict.score))
                @if !v.verdict.decided_by.is_empty() { " (" (v.verdict.decided_by) ")" } }
            table.findings {
                thead { tr { th { "Rule" } th.num { "Score" } th { "Evidence" } } }
                tbody { @for f in &v.verdict.rules { tr { td { code { (f.id) } @if f.monitor { " (monitor)" } } td.num { (fmt_score(f.score)) } td { (defang(&f.evidence)) } } } }
            }
            h2 { "Authentication" }
            p { (v.auth.origin) }
            table.auth {
                tbody {
                    @if let Some(m) = &v.auth.spf { (method("SPF", m)) }
                    @for m in &v.auth.dkim { (method("DKIM", m)) }
                    @if let Some(m) = &v.auth.dmarc { (method("DMARC", m)) }
                    @if let Some(m) = &v.auth.compauth { (method("compauth", m)) }
                }
            }
            @for ar in &v.auth_results { pre.ar { "Authentication-Results: " (defang(ar)) } }
            h2 { "Attachments" }
            @if v.attachments.is_empty() { p { "none" } }
            ul.attachments { @for (name, ctype, len) in &v.attachments { li { code { (name) } " · " (ctype) " · " (len) " bytes" } } }
            h2 { "Links (defanged)" }
            @if v.links.is_empty() { p { "none" } }
            ul.links { @for l in &v.links { li { code { (l) } } } }
            h2 { "Body (as text)" }
            pre.body { (defang(&v.body_text)) }
            @for (i, h) in v.html_source.iter().enumerate() {
                details { summary { "HTML part " (i + 1) " (source, shown as text)" } pre.body { (defang(h)) } }
            }
            h2 { "Headers" }
            table.headers { tbody { @for (n, val) in &v.headers { tr { th { (n) } td { (defang(val)) } } } } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_defanged() {
        assert_eq!(defang("see https://evil.example/login?x=1 now"), "see hxxps://evil[.]example/login?x=1 now");
        assert_eq!(defang("HTTP://a.example"), "hxxp://a[.]example");
        assert_eq!(defang("the domain evil.example stays readable"), "the domain evil.example stays readable");
        assert!(!defang("odd https:// and http://").contains("http"));
        assert_eq!(defang("no link here"), "no link here");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1796234144), "2026-12-02 17:55:44 UTC");
    }
}
