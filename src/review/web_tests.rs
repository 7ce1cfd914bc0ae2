//! The review page's handlers over a fake hold queue: who may ask, CSRF, escaping, actions.

use super::store::Queue;
use super::token::Token;
use super::web::{router, App, CSP};
use crate::quarantine::Held;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Default)]
struct FakeQueue {
    held: Mutex<Vec<(Held, Vec<u8>)>>,
    done: Mutex<Vec<String>>,
    /// Messages read through `messages`.
    reads: Mutex<usize>,
}

impl Queue for FakeQueue {
    fn held(&self) -> Result<Vec<Held>, String> {
        Ok(self.held.lock().unwrap().iter().map(|(h, _)| h.clone()).collect())
    }
    fn messages(&self, ids: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let held = self.held.lock().unwrap();
        *self.reads.lock().unwrap() += ids.len();
        Ok(ids.iter().filter_map(|id| held.iter().find(|(h, _)| &h.queue_id == id).map(|(_, m)| (id.clone(), m.clone()))).collect())
    }
    fn release(&self, id: &str) -> Result<(), String> {
        self.take(id, "release")
    }
    fn delete(&self, id: &str) -> Result<(), String> {
        self.take(id, "delete")
    }
}

impl FakeQueue {
    fn take(&self, id: &str, what: &str) -> Result<(), String> {
        let mut held = self.held.lock().unwrap();
        let n = held.len();
        held.retain(|(h, _)| h.queue_id != id);
        if held.len() == n {
            return Err(format!("{id}: not in the hold queue"));
        }
        self.done.lock().unwrap().push(format!("{what} {id}"));
        Ok(())
    }
}

fn held(id: &str, t: i64, raw: &str) -> (Held, Vec<u8>) {
    let h = Held {
        queue_id: id.into(),
        arrival_time: t,
        sender: "security@account-notice.example".into(),
        recipients: vec!["bob@rcpt.example".into()],
        verdict: None,
        score: None,
        rules: None,
        from: None,
        subject: None,
    };
    (h, raw.replace('\n', "\r\n").into_bytes())
}

const HOSTILE: &str = "X-Impostor-Verdict: quarantine\nX-Impostor-Score: 12.0\nX-Impostor-Rules: BRAND_NAME_FOREIGN_DOMAIN=6, IMPERSONATION=6\nFrom: \"OpenAI Security\" <security@account-notice.example>\nTo: bob@rcpt.example\nSubject: <script>alert(1)</script> OpenAI <b>sign-in</b>\nContent-Type: text/plain\n\nDear user, <script>alert('x')</script><img src=x onerror=alert(2)>\nreview: https://account-review.example/activity\n";

fn app(msgs: Vec<(Held, Vec<u8>)>, feedback: &std::path::Path) -> (Arc<App>, Arc<FakeQueue>) {
    let q = Arc::new(FakeQueue { held: Mutex::new(msgs), ..Default::default() });
    let engine = crate::analysis::Engine::new(crate::config::Config::default()).unwrap();
    let tokens = vec![Token { name: "alice".into(), secret: SECRET.into() }];
    (Arc::new(App::new(q.clone(), engine, tokens, feedback.to_path_buf()).unwrap()), q)
}

async fn send(app: &Arc<App>, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let r = router(app.clone()).oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn post(path: &str, bearer: Option<&str>, form: &str) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(form.to_string())).unwrap()
}

#[tokio::test]
async fn without_a_token_every_page_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, q) = app(vec![held("AAA111", 100, HOSTILE)], dir.path());
    let (s, h, body) = send(&app, get("/", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("name=\"token\""), "the login form: {body}");
    assert_eq!(h.get(header::CONTENT_SECURITY_POLICY).unwrap(), CSP);
    assert_eq!(send(&app, get("/message/AAA111", None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&app, get("/", Some("wrong-token-wrong-token-wrong-token"))).await.0, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(&app, post("/message/AAA111/release", None, "csrf=x")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(q.done.lock().unwrap().is_empty(), "nothing was released");
}

#[tokio::test]
async fn an_action_without_the_csrf_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, q) = app(vec![held("AAA111", 100, HOSTILE)], dir.path());
    for form in ["", "csrf=", "csrf=0000"] {
        let (s, _, _) = send(&app, post("/message/AAA111/release", Some(SECRET), form)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "form {form:?}");
    }
    assert!(q.done.lock().unwrap().is_empty());
    let csrf = app.bearer_csrf("alice").unwrap().to_string();
    let (s, h, _) = send(&app, post("/message/AAA111/release", Some(SECRET), &format!("csrf={csrf}"))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(h.get(header::LOCATION).unwrap().to_str().unwrap().contains("released"));
    assert_eq!(*q.done.lock().unwrap(), ["release AAA111"]);
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_and_needs_the_form_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(vec![], dir.path());
    let (s, _, _) = send(&app, post("/login", None, &format!("token={SECRET}&csrf=abc"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no login cookie: login CSRF refused");
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, "impostor_login=abc")
        .body(Body::from(format!("token={SECRET}&csrf=abc")))
        .unwrap();
    let (s, h, _) = send(&app, req).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let cookie = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("impostor_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let sid = cookie.split(';').next().unwrap();
    let req = Request::get("/").header(header::COOKIE, sid).body(Body::empty()).unwrap();
    let (s, _, body) = send(&app, req).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("signed in as alice"), "{body}");
}

#[tokio::test]
async fn hostile_subject_and_body_are_shown_escaped_with_links_defanged() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(vec![held("AAA111", 100, HOSTILE)], dir.path());
    let (s, _, list) = send(&app, get("/", Some(SECRET))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.contains("&lt;script&gt;alert(1)&lt;/script&gt; OpenAI &lt;b&gt;sign-in&lt;/b&gt;"), "{list}");
    assert!(list.contains("BRAND_NAME_FOREIGN_DOMAIN") && list.contains("12.0"), "{list}");
    let (s, _, msg) = send(&app, get("/message/AAA111", Some(SECRET))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!msg.contains("<script") && !msg.contains("<img") && !msg.contains("<b>"), "nothing of the message is markup: {msg}");
    assert!(msg.contains("&lt;script&gt;alert('x')&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"), "{msg}");
    assert!(msg.contains("hxxps://account-review[.]example/activity"), "{msg}");
    assert!(!msg.contains("https://account-review"), "no live link: {msg}");
    assert!(msg.contains("BRAND_NAME_FOREIGN_DOMAIN"), "findings: {msg}");
    assert!(!msg.contains("HTML part"), "a text/plain message has no HTML part to show: {msg}");
}

const HTML_ONLY: &str = "X-Impostor-Verdict: quarantine\nFrom: \"OpenAI\" <a@evil.example>\nSubject: hi\nContent-Type: text/html\n\n<html><body><p>Click <a href=\"https://evil.example/x\">here</a></p><script>alert(3)</script><img src=\"https://tracker.example/p.gif\"></body></html>\n";

#[tokio::test]
async fn an_html_body_is_shown_as_its_source_text_never_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(vec![held("HTM1", 100, HTML_ONLY)], dir.path());
    let (s, _, msg) = send(&app, get("/message/HTM1", Some(SECRET))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(msg.contains("HTML part 1"), "{msg}");
    assert!(msg.contains("&lt;a href=&quot;hxxps://evil[.]example/x&quot;&gt;here&lt;/a&gt;"), "{msg}");
    assert!(msg.contains("&lt;img src=&quot;hxxps://tracker[.]example/p.gif&quot;&gt;"), "no remote image: {msg}");
    assert!(!msg.contains("<script") && !msg.contains("<img") && !msg.contains("<a href=\"h"), "{msg}");
}

#[tokio::test]
async fn reports_write_eml_and_verdict_json_for_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (app, q) = app(vec![held("AAA111", 100, HOSTILE), held("BBB222", 200, HOSTILE)], dir.path());
    let csrf = app.bearer_csrf("alice").unwrap().to_string();
    let (s, _, _) = send(&app, post("/message/AAA111/release-ham", Some(SECRET), &format!("csrf={csrf}"))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = send(&app, post("/message/BBB222/delete-phish", Some(SECRET), &format!("csrf={csrf}"))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(*q.done.lock().unwrap(), ["release AAA111", "delete BBB222"]);
    let eml = std::fs::read(dir.path().join("ham/AAA111.eml")).unwrap();
    assert!(eml.starts_with(b"X-Impostor-Verdict: quarantine"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ham/AAA111.json")).unwrap()).unwrap();
    assert_eq!(json["reported_as"], "ham");
    assert_eq!(json["reviewer"], "alice");
    assert!(json["verdict"]["rules"].as_array().is_some_and(|r| !r.is_empty()), "{json}");
    assert!(dir.path().join("phish/BBB222.eml").exists() && dir.path().join("phish/BBB222.json").exists());
    // gone from the queue: a second release is a 404, not a second report
    let (s, _, _) = send(&app, post("/message/AAA111/release-ham", Some(SECRET), &format!("csrf={csrf}"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_filters_and_pages_over_many_held_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut msgs = Vec::new();
    for i in 0..120 {
        let raw = if i % 4 == 0 {
            HOSTILE.replace("Subject: <script>", &format!("Subject: n{i:03} <script>"))
        } else {
            format!("X-Impostor-Verdict: quarantine\nX-Impostor-Score: 3.0\nX-Impostor-Rules: OTHER_RULE=3\nFrom: x@plain{i}.example\nSubject: plain n{i:03}\n\nhello\n")
        };
        msgs.push(held(&format!("Q{i:04}"), 1000 + i, &raw));
    }
    let (app, _) = app(msgs, dir.path());
    let (_, _, page1) = send(&app, get("/", Some(SECRET))).await;
    assert!(page1.contains("120 of 120 held message(s)") && page1.contains("page 1 of 3"), "{page1}");
    assert_eq!(page1.matches("data-queue-id=").count(), 50);
    let (_, _, f) = send(&app, get("/?rule=IMPERSONATION&domain=account-notice.example&sort=score&page=1", Some(SECRET))).await;
    assert!(f.contains("30 of 120 held message(s)"), "{f}");
    assert!(!f.contains("plain n"), "{f}");
}

#[test]
fn the_cache_reads_each_held_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<_> = (0..450).map(|i| held(&format!("Q{i:04}"), 1000 + i, HOSTILE)).collect();
    let (app, q) = app(msgs, dir.path());
    let rows = app.cache.refresh(q.as_ref(), &app.engine).unwrap();
    assert_eq!(rows.len(), 450);
    assert_eq!(rows[0].brand.as_deref(), Some("OpenAI"), "the brand from the offline analysis");
    assert_eq!(*q.reads.lock().unwrap(), 450);
    assert_eq!(app.cache.refresh(q.as_ref(), &app.engine).unwrap().len(), 450);
    assert_eq!(*q.reads.lock().unwrap(), 450, "a warm refresh reads no message");
    {
        let mut h = q.held.lock().unwrap();
        h.retain(|(m, _)| m.queue_id != "Q0001");
        h[0].0.arrival_time = 5; // Q0000: the queue id reused by a new message
        h.push(held("NEW1", 9999, HOSTILE));
    }
    let rows = app.cache.refresh(q.as_ref(), &app.engine).unwrap();
    assert_eq!(rows.len(), 450);
    assert_eq!(*q.reads.lock().unwrap(), 452, "only the new message and the reused id are read");
    assert!(app.cache.get("Q0001").is_none(), "a message that left the queue leaves the cache");
    assert_eq!(app.cache.get("Q0000").unwrap().arrival_time, 5);
}

#[tokio::test]
async fn another_host_name_is_refused_on_a_loopback_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(vec![], dir.path());
    let mut app = Arc::into_inner(app).unwrap();
    app.allowed_hosts = Some(super::web::loopback_hosts(9358));
    let app = Arc::new(app);
    let req = |host: &str| {
        Request::get("/").header(header::HOST, host).header(header::AUTHORIZATION, format!("Bearer {SECRET}")).body(Body::empty()).unwrap()
    };
    assert_eq!(send(&app, req("127.0.0.1:9358")).await.0, StatusCode::OK);
    assert_eq!(send(&app, req("localhost:9358")).await.0, StatusCode::OK);
    let (s, h, _) = send(&app, req("rebound.attacker.example:9358")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h.get(header::CONTENT_SECURITY_POLICY).unwrap(), CSP);
}
