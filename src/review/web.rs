//! The review page's HTTP side (axum): who is asking (Bearer token or session cookie), CSRF,
//! the list, the message view and the four actions. Every response carries a strict CSP.

use super::page::{self, MessageView};
use super::store::{self, Cache, Filter, Queue, Summary};
use super::token::{self, Token};
use crate::analysis::Engine;
use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The session cookie (HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "impostor_session";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_COOKIE: &str = "impostor_login";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// `Content-Security-Policy` of every response: nothing but this origin's stylesheet.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct Session {
    name: String,
    csrf: String,
    expires: Instant,
}

/// The review page's state.
pub struct App {
    pub queue: Arc<dyn Queue>,
    pub engine: Arc<Engine>,
    tokens: Vec<Token>,
    /// CSRF token per token name for requests with `Authorization: Bearer` (for this process's life).
    bearer_csrf: HashMap<String, String>,
    sessions: Mutex<HashMap<String, Session>>,
    pub cache: Cache,
    pub feedback_dir: PathBuf,
    /// `Host` header values accepted (loopback names of the listen port), or `None`: any
    /// (`review.allow_remote`). Against DNS rebinding: a page of another site whose name now
    /// resolves to 127.0.0.1 sends its own name as Host.
    pub allowed_hosts: Option<Vec<String>>,
}

impl App {
    pub fn new(queue: Arc<dyn Queue>, engine: Arc<Engine>, tokens: Vec<Token>, feedback_dir: PathBuf) -> Result<App, String> {
        let bearer_csrf = tokens.iter().map(|t| Ok((t.name.clone(), token::random_hex(24)?))).collect::<Result<_, String>>()?;
        Ok(App {
            queue,
            engine,
            tokens,
            bearer_csrf,
            sessions: Mutex::new(HashMap::new()),
            cache: Cache::default(),
            feedback_dir,
            allowed_hosts: None,
        })
    }

    /// The CSRF token that goes with a Bearer token's name (what the pages embed for it).
    pub fn bearer_csrf(&self, name: &str) -> Option<&str> {
        self.bearer_csrf.get(name).map(String::as_str)
    }
}

/// Who is asking: the token's name and the CSRF token their forms must carry.
struct Who {
    name: String,
    csrf: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn identify(app: &App, headers: &HeaderMap) -> Option<Who> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let secret = auth.strip_prefix("Bearer ")?.trim();
        let t = app.tokens.iter().find(|t| token::same(&t.secret, secret))?;
        return Some(Who { name: t.name.clone(), csrf: app.bearer_csrf.get(&t.name)?.clone() });
    }
    let sid = cookie(headers, SESSION_COOKIE)?;
    let mut sessions = app.sessions.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    sessions.retain(|_, s| s.expires > now);
    let s = sessions.iter().find(|(k, _)| token::same(k, sid)).map(|(_, s)| s)?;
    Some(Who { name: s.name.clone(), csrf: s.csrf.clone() })
}

fn html(status: StatusCode, m: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response()
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> (header::HeaderName, String) {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    (header::SET_COOKIE, format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}"))
}

/// 401 with the login form (and its CSRF cookie): what a request without a token gets.
fn login_required(error: Option<&str>) -> Response {
    let Ok(csrf) = token::random_hex(24) else {
        return html(StatusCode::INTERNAL_SERVER_ERROR, page::error("Error", "no random numbers"));
    };
    let mut r = html(StatusCode::UNAUTHORIZED, page::login(&csrf, error));
    let (k, v) = set_cookie(LOGIN_COOKIE, &csrf, Some(3600));
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(k, v);
    }
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"impostor review\""));
    r
}

fn forbidden(text: &str) -> Response {
    html(StatusCode::FORBIDDEN, page::error("Refused", text))
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    r
}

/// The `Host` values a loopback listener on `port` answers to.
pub fn loopback_hosts(port: u16) -> Vec<String> {
    ["127.0.0.1", "localhost", "[::1]"].iter().map(|h| format!("{h}:{port}")).collect()
}

async fn check_host(State(app): State<Arc<App>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if let (Some(allowed), Some(host)) = (&app.allowed_hosts, req.headers().get(header::HOST)) {
        let host = host.to_str().unwrap_or("").to_ascii_lowercase();
        if !allowed.contains(&host) {
            tracing::warn!(host = %host, "review: request for another host name refused (DNS rebinding?)");
            return forbidden("this page answers only to its loopback address (review.listen)");
        }
    }
    next.run(req).await
}

/// The router of the review page.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/review.css", get(css))
        .route("/message/{id}", get(message))
        .route("/message/{id}/{action}", post(act))
        .layer(axum::middleware::from_fn_with_state(app.clone(), check_host))
        .with_state(app)
        .layer(axum::middleware::map_response(security_headers))
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], page::CSS).into_response()
}

async fn login_form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if identify(&app, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    let mut r = login_required(None);
    *r.status_mut() = StatusCode::OK;
    r
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    match cookie(&headers, LOGIN_COOKIE) {
        Some(c) if !f.csrf.is_empty() && token::same(c, &f.csrf) => {}
        _ => return forbidden("the login form's CSRF token is missing or does not match: reload the login page"),
    }
    let Some(t) = app.tokens.iter().find(|t| token::same(&t.secret, f.token.trim())) else {
        tracing::warn!("review: login with an unknown token refused");
        return login_required(Some("That token is not in review.token_file."));
    };
    let (Ok(sid), Ok(csrf)) = (token::random_hex(32), token::random_hex(24)) else {
        return html(StatusCode::INTERNAL_SERVER_ERROR, page::error("Error", "no random numbers"));
    };
    app.sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sid.clone(), Session { name: t.name.clone(), csrf, expires: Instant::now() + SESSION_TTL });
    tracing::info!(who = %t.name, "review: logged in");
    let mut r = Redirect::to("/").into_response();
    for (k, v) in [set_cookie(SESSION_COOKIE, &sid, None), set_cookie(LOGIN_COOKIE, "", Some(0))] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn csrf_ok(who: &Who, f: &CsrfForm) -> bool {
    !f.csrf.is_empty() && token::same(&who.csrf, &f.csrf)
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    let Some(who) = identify(&app, &headers) else { return login_required(None) };
    if !csrf_ok(&who, &f) {
        return forbidden("missing or wrong CSRF token");
    }
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        app.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(sid);
    }
    tracing::info!(who = %who.name, "review: logged out");
    let mut r = Redirect::to("/login").into_response();
    let (k, v) = set_cookie(SESSION_COOKIE, "", Some(0));
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(k, v);
    }
    r
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("internal error: {e}"))
}

async fn list(State(app): State<Arc<App>>, headers: HeaderMap, Query(f): Query<Filter>) -> Response {
    let Some(who) = identify(&app, &headers) else { return login_required(None) };
    let a = app.clone();
    let rows = match blocking(move || a.cache.refresh(a.queue.as_ref(), &a.engine)).await.and_then(|r| r) {
        Ok(rows) => rows,
        Err(e) => return html(StatusCode::BAD_GATEWAY, page::error("Cannot read the hold queue", &e)),
    };
    let sel = store::select(&rows, &f);
    html(StatusCode::OK, page::list(&who.name, &who.csrf, &f, &sel))
}

/// Reads one held message: its list row (from the cache, or a refresh) and its queued copy.
async fn fetch(app: &Arc<App>, id: &str) -> Result<Option<(Arc<Summary>, Vec<u8>)>, String> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let a = app.clone();
    let id = id.to_string();
    blocking(move || {
        let summary = match a.cache.get(&id) {
            Some(s) => s,
            None => match a.cache.refresh(a.queue.as_ref(), &a.engine)?.into_iter().find(|s| s.queue_id == id) {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        Ok(a.queue.messages(std::slice::from_ref(&id))?.into_iter().next().map(|(_, raw)| (summary, raw)))
    })
    .await?
}

/// The held copy judged again offline with the current configuration, on the envelope the queue records.
fn recheck(engine: &Engine, summary: &Summary, raw: &[u8]) -> (crate::verdict::Verdict, crate::cli::AuthReport) {
    let envelope = store::envelope_of(&summary.queue_id, &summary.sender, &summary.recipients);
    crate::cli::check_bytes_auth(engine, raw, &envelope, None)
}

/// The message view's data: the offline verdict with findings, the parsed parts.
pub fn view(engine: &Engine, summary: &Summary, raw: &[u8]) -> MessageView {
    let (verdict, auth) = recheck(engine, summary, raw);
    let headers = crate::auth::header_fields(raw);
    let auth_results = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("authentication-results")).map(|(_, v)| v.clone()).collect();
    const MAX_SHOWN: usize = 256 * 1024;
    let cut = |s: &str| {
        if s.len() <= MAX_SHOWN {
            s.to_string()
        } else {
            let mut end = MAX_SHOWN;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\n[… {} more bytes not shown]", &s[..end], s.len() - end)
        }
    };
    let mut body_text = String::new();
    let mut html_source = Vec::new();
    let mut attachments = Vec::new();
    let mut links = Vec::new();
    if let Some(msg) = mail_parser::MessageParser::default().parse(raw) {
        use mail_parser::MimeHeaders;
        body_text = msg.body_text(0).map(|t| cut(&t)).unwrap_or_default();
        // the HTML parts as sent (mail-parser's html_body also lists text parts, converted)
        for &i in &msg.html_body {
            if let Some(mail_parser::PartType::Html(h)) = msg.parts.get(i as usize).map(|p| &p.body) {
                html_source.push(cut(h));
            }
        }
        for a in msg.attachments() {
            let name = a.attachment_name().unwrap_or("(no name)").to_string();
            let ctype =
                a.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))).unwrap_or_else(|| "(no type)".into());
            attachments.push((name, ctype, a.contents().len()));
        }
        let mut finder = linkify::LinkFinder::new();
        finder.kinds(&[linkify::LinkKind::Url]);
        for text in std::iter::once(&body_text).chain(html_source.iter()) {
            for l in finder.links(text) {
                let d = page::defang(l.as_str());
                if !links.contains(&d) && links.len() < 500 {
                    links.push(d);
                }
            }
        }
        crate::message::drop_flat(msg);
    }
    MessageView { summary: summary.clone(), verdict, auth, auth_results, headers, body_text, html_source, links, attachments }
}

async fn message(State(app): State<Arc<App>>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Response {
    let Some(who) = identify(&app, &headers) else { return login_required(None) };
    match fetch(&app, &id).await {
        Ok(Some((summary, raw))) => {
            let engine = app.engine.clone();
            match blocking(move || view(&engine, &summary, &raw)).await {
                Ok(v) => html(StatusCode::OK, page::message(&who.name, &who.csrf, &v)),
                Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, page::error("Error", &e)),
            }
        }
        Ok(None) => html(StatusCode::NOT_FOUND, page::error("Not held", &format!("{id} is not in the hold queue."))),
        Err(e) => html(StatusCode::BAD_GATEWAY, page::error("Cannot read the hold queue", &e)),
    }
}

/// The four actions of the message view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Release,
    Delete,
    /// Release and report a false positive: the message goes to `feedback_dir/ham/`.
    ReleaseHam,
    /// Delete and confirm phish: the message goes to `feedback_dir/phish/`.
    DeletePhish,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "release" => Action::Release,
            "delete" => Action::Delete,
            "release-ham" => Action::ReleaseHam,
            "delete-phish" => Action::DeletePhish,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Release => "release",
            Action::Delete => "delete",
            Action::ReleaseHam => "release-ham",
            Action::DeletePhish => "delete-phish",
        }
    }
    fn feedback(self) -> Option<&'static str> {
        match self {
            Action::ReleaseHam => Some("ham"),
            Action::DeletePhish => Some("phish"),
            _ => None,
        }
    }
}

/// Writes `DIR/{ham,phish}/ID.eml` (the held copy) and `ID.json` (its verdict), each through a
/// temporary file and a rename; returns the two paths.
pub fn write_feedback(app: &App, kind: &str, who: &str, summary: &Summary, raw: &[u8]) -> Result<Vec<PathBuf>, String> {
    let dir = app.feedback_dir.join(kind);
    std::fs::create_dir_all(&dir).map_err(|e| format!("review.feedback_dir: {}: {e}", dir.display()))?;
    let eml = dir.join(format!("{}.eml", summary.queue_id));
    let json = dir.join(format!("{}.json", summary.queue_id));
    let (verdict, auth) = recheck(&app.engine, summary, raw);
    let record = serde_json::json!({
        "queue_id": summary.queue_id,
        "reported_as": kind,
        "reviewer": who,
        "reviewed_at": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "held": { "verdict": summary.verdict, "score": summary.score, "rules": summary.rules, "arrival_time": summary.arrival_time },
        "envelope": { "sender": summary.sender, "recipients": summary.recipients },
        "verdict": crate::cli::FileResult { file: eml.display().to_string(), verdict: &verdict, auth: &auth },
    });
    let text = serde_json::to_string_pretty(&record).map_err(|e| e.to_string())?;
    for (path, bytes) in [(&eml, raw), (&json, text.as_bytes())] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("review.feedback_dir: {}: {e}", path.display()))?;
    }
    Ok(vec![eml, json])
}

async fn act(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath((id, action)): UrlPath<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let Some(who) = identify(&app, &headers) else { return login_required(None) };
    if !csrf_ok(&who, &f) {
        tracing::warn!(who = %who.name, queue_id = %id, action = %action, "review: action refused: missing or wrong CSRF token");
        return forbidden("missing or wrong CSRF token");
    }
    let Some(action) = Action::parse(&action) else {
        return html(StatusCode::NOT_FOUND, page::error("No such action", &action));
    };
    let (summary, raw) = match fetch(&app, &id).await {
        Ok(Some(x)) => x,
        Ok(None) => return html(StatusCode::NOT_FOUND, page::error("Not held", &format!("{id} is not in the hold queue."))),
        Err(e) => return html(StatusCode::BAD_GATEWAY, page::error("Cannot read the hold queue", &e)),
    };
    let a = app.clone();
    let name = who.name.clone();
    let result = blocking(move || -> Result<Vec<PathBuf>, String> {
        let written = match action.feedback() {
            Some(kind) => write_feedback(&a, kind, &name, &summary, &raw)?,
            None => Vec::new(),
        };
        let done = match action {
            Action::Release | Action::ReleaseHam => a.queue.release(&summary.queue_id),
            Action::Delete | Action::DeletePhish => a.queue.delete(&summary.queue_id),
        };
        if let Err(e) = done {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        a.cache.forget(&summary.queue_id);
        Ok(written)
    })
    .await
    .and_then(|r| r);
    match result {
        Ok(written) => {
            let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            tracing::info!(who = %who.name, action = action.as_str(), queue_id = %id, feedback = ?files, "review: action done");
            let notice = match action {
                Action::Release => format!("{id} released for delivery"),
                Action::Delete => format!("{id} deleted"),
                Action::ReleaseHam => format!("{id} released and reported as a false positive"),
                Action::DeletePhish => format!("{id} deleted and confirmed as phish"),
            };
            let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("notice", &notice).finish();
            Redirect::to(&format!("/?{q}")).into_response()
        }
        Err(e) => {
            tracing::warn!(who = %who.name, action = action.as_str(), queue_id = %id, error = %e, "review: action failed");
            html(StatusCode::BAD_GATEWAY, page::error("Action failed", &e))
        }
    }
}
