//! Debian's nginx serves the published site with `scripts/nginx.conf` while
//! builds are swapped under it: every answer is 200, whole, from one build
//! that was current during the request, with the configured headers; then
//! headless Chromium loads the home and search pages through it with the CSP
//! in force.
//!
//! Build identity: every HTML page carries its build's generation time in the
//! footer (`Generated <time datetime="…">`), and each build of the loop is
//! rendered with its own time. The builder records every file of a build
//! before publishing it, so a client can look any answer up: the body must be
//! byte for byte that build's file, the build must be one that was current at
//! some moment of the request, and the page's links must be files of it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use scraper::{Html, Selector};
use sitegen::{Config, Site, swap};

use crate::fixture;

const NGINX: &str = "/usr/sbin/nginx";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Builds published while the clients run (at least).
const SWAPS: usize = 25;
/// Requests answered after each swap before the next one starts.
const PER_SWAP: usize = 250;
const CLIENTS: usize = 6;
/// Bounds: no client makes more requests, no phase runs longer.
const MAX_PER_CLIENT: usize = 20_000;
// Each build renders every page of the fixture (33 of them): on two shared
// cores under load a swap can take over a second.
const PHASE: Duration = Duration::from_secs(60);
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// nginx as a non-daemon child in its own process group; dropping it stops
/// the master and its workers (TERM, then KILL if it does not exit).
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Writes a main nginx.conf around `scripts/nginx.conf` (listen on a free
    /// loopback port, root = `site`, pid/logs/temp paths under `dir`) and
    /// waits until nginx accepts connections.
    fn start(dir: &Path, site: &Path) -> Self {
        let shipped = std::fs::read_to_string(shipped_conf()).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        // The temp dir is private to the test's user: the workers run as that
        // user (a root master would switch them to nobody otherwise).
        let user = if std::fs::metadata(dir).unwrap().uid() == 0 {
            "user root root;\n"
        } else {
            ""
        };
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\n{user}\
             pid {d}/nginx.pid;\nlock_file {d}/nginx.lock;\nerror_log {d}/error.log notice;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n\
             \x20   sendfile on;\n    tcp_nopush on;\n    access_log {d}/access.log;\n\
             \x20   client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n\
             \x20   fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n\
             \x20   scgi_temp_path {d}/tmp/scgi;\n    include {d}/ctjp.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            std::fs::write(dir.join("ctjp.conf"), server_block(&shipped, port, site)).unwrap();
            let stderr = File::create(dir.join("stderr.log")).unwrap();
            let child = Command::new(NGINX)
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .process_group(0)
                .spawn()
                .unwrap();
            let mut n = Self {
                child,
                port,
                dir: dir.to_path_buf(),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if n.child.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return n;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last = n.logs();
            drop(n);
            if !last.contains("Address already in use") {
                break;
            }
        }
        panic!("nginx did not start:\n{last}");
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    fn access_log_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.join("access.log")).map_or(0, |s| s.lines().count())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The group id is the child's pid; the child is not reaped before
        // the last signal, so the id cannot have been reused.
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shipped_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nginx.conf")
}

fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// `scripts/nginx.conf` with its two `listen` lines and its `root` line
/// replaced; each must be there exactly once.
fn server_block(shipped: &str, port: u16, site: &Path) -> String {
    let mut seen = [0usize; 3];
    let out: Vec<String> = shipped
        .lines()
        .map(|line| {
            let code = line.split('#').next().unwrap_or("").trim();
            match code {
                "listen 80;" => {
                    seen[0] += 1;
                    format!("    listen 127.0.0.1:{port};")
                }
                "listen [::]:80;" => {
                    seen[1] += 1;
                    String::new()
                }
                "root /var/www/ctjp/site;" => {
                    seen[2] += 1;
                    format!("    root \"{}\";", site.display())
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        seen,
        [1, 1, 1],
        "scripts/nginx.conf must have the lines `listen 80;`, `listen [::]:80;` and \
         `root /var/www/ctjp/site;` once each (the test replaces them)"
    );
    out.join("\n")
}

/// One published build: its id (the footer time) and every file.
struct Build {
    id: String,
    files: BTreeMap<String, Vec<u8>>,
}

fn build_id(html: &str) -> Option<&str> {
    const MARK: &str = "Generated <time datetime=\"";
    let rest = &html[html.rfind(MARK)? + MARK.len()..];
    rest.split('"').next()
}

fn record(dir: &Path) -> Build {
    let files: BTreeMap<String, Vec<u8>> = fixture::files(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel.to_str().unwrap().to_owned(), bytes)
        })
        .collect();
    let index = String::from_utf8(files["index.html"].clone()).unwrap();
    let id = build_id(&index).unwrap().to_owned();
    Build { id, files }
}

/// What the clients share with the builder.
#[derive(Default)]
struct Shared {
    /// Index = build sequence number; a build is pushed before it is published.
    builds: RwLock<Vec<Arc<Build>>>,
    /// Sequence number of the build published last (set after the rename).
    current: AtomicUsize,
    stop: AtomicBool,
    requests: AtomicUsize,
    failures: AtomicUsize,
    messages: Mutex<Vec<String>>,
    /// (build, page) whose links were checked already.
    linked: Mutex<HashSet<(usize, String)>>,
    /// Builds seen in HTML answers.
    seen: Mutex<BTreeSet<usize>>,
}

impl Shared {
    fn fail(&self, msg: String) {
        self.failures.fetch_add(1, SeqCst);
        let mut m = self.messages.lock().unwrap();
        if m.len() < 20 {
            m.push(msg);
        }
    }
}

/// Resolves a relative link of page `page` to a path under the site root.
fn resolve(page: &str, link: &str) -> Option<String> {
    let path = link.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return Some(page.to_owned());
    }
    let mut parts: Vec<&str> = if path.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = page.split('/').collect();
        p.pop();
        p
    };
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    if path.ends_with('/') || parts.is_empty() {
        parts.push("index.html");
    }
    Some(parts.join("/"))
}

/// Every internal href/src/action of `html` is a file of `build`.
fn check_links(build: &Build, page: &str, html: &str) -> Result<(), String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse("a[href], link[href], script[src], img[src], form[action]").unwrap();
    let mut n = 0;
    for el in doc.select(&sel) {
        let v = el.value();
        let link = v
            .attr("href")
            .or(v.attr("src"))
            .or(v.attr("action"))
            .unwrap_or_default();
        if ["http:", "https:", "#", "mailto:", "data:"]
            .iter()
            .any(|p| link.starts_with(p))
        {
            continue;
        }
        let target = resolve(page, link).ok_or_else(|| format!("link {link} leaves the site"))?;
        if !build.files.contains_key(&target) {
            return Err(format!(
                "link {link} -> {target} is not a file of build {}",
                build.id
            ));
        }
        n += 1;
    }
    if n == 0 {
        return Err("no internal links".into());
    }
    Ok(())
}

/// The headers `scripts/nginx.conf` sets for the file `rel` (lower-case names).
fn expected_headers(rel: &str) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", CSP),
    ];
    let (content_type, cache) = match rel.rsplit('.').next().unwrap_or("") {
        "html" => ("text/html; charset=utf-8", "max-age=60"),
        "css" => ("text/css", "max-age=300"),
        "js" => ("application/javascript; charset=utf-8", "max-age=300"),
        "json" => ("application/json", "max-age=60"),
        other => panic!("unexpected file type {other} ({rel})"),
    };
    h.push(("content-type", content_type));
    h.push(("cache-control", cache));
    if rel == "stats.json" {
        h.push(("access-control-allow-origin", "*"));
    }
    h
}

fn check_headers(rel: &str, headers: &reqwest::header::HeaderMap) -> Result<(), String> {
    for (name, want) in expected_headers(rel) {
        let got: Vec<_> = headers.get_all(name).iter().collect();
        if got.len() != 1 || got[0] != want {
            return Err(format!("header {name}: {got:?}, want [{want:?}]"));
        }
    }
    if !headers.contains_key("expires") {
        return Err("no Expires header".into());
    }
    Ok(())
}

/// Checks one answer for the file `rel`, requested while builds `before`
/// ..= `after` were the published ones (`after + 1` may have been renamed in
/// already).
fn check_answer(
    sh: &Shared,
    rel: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    before: usize,
    after: usize,
) -> Result<(), String> {
    if status != reqwest::StatusCode::OK {
        return Err(format!("status {status}"));
    }
    check_headers(rel, headers)?;
    let builds = sh.builds.read().unwrap();
    let last = (after + 1).min(builds.len() - 1);
    if rel.ends_with(".html") {
        let html = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
        if !html.trim_end().ends_with("</html>") {
            return Err(format!("cut short ({} bytes)", body.len()));
        }
        let id = build_id(html).ok_or("no build id in the footer")?;
        let seq = builds
            .iter()
            .position(|b| b.id == id)
            .ok_or_else(|| format!("build {id} was never published"))?;
        if seq < before || seq > last {
            return Err(format!(
                "build {seq} ({id}) served while builds {before}..={after} were current"
            ));
        }
        let build = Arc::clone(&builds[seq]);
        drop(builds);
        if build.files.get(rel).map(Vec::as_slice) != Some(body) {
            return Err(format!(
                "body is not build {seq}'s {rel} (a mix of builds?)"
            ));
        }
        sh.seen.lock().unwrap().insert(seq);
        let fresh = sh.linked.lock().unwrap().insert((seq, rel.to_owned()));
        if fresh {
            check_links(&build, rel, html)?;
        }
        return Ok(());
    }
    let found = builds[before..=last]
        .iter()
        .any(|b| b.files.get(rel).map(Vec::as_slice) == Some(body));
    if !found {
        return Err(format!(
            "body ({} bytes) is not {rel} of builds {before}..={last}",
            body.len()
        ));
    }
    Ok(())
}

/// Requests the pages round-robin until told to stop.
async fn client(n: usize, base: String, urls: Arc<Vec<(String, String)>>, sh: Arc<Shared>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + PHASE;
    // Each client starts at another page.
    for i in (n * 5..).take(MAX_PER_CLIENT) {
        if sh.stop.load(SeqCst) || Instant::now() > deadline {
            break;
        }
        let (url, rel) = &urls[i % urls.len()];
        let before = sh.current.load(SeqCst);
        let answer = match http.get(format!("{base}{url}")).send().await {
            Ok(r) => {
                let status = r.status();
                let headers = r.headers().clone();
                r.bytes().await.map(|b| (status, headers, b))
            }
            Err(e) => Err(e),
        };
        let after = sh.current.load(SeqCst);
        sh.requests.fetch_add(1, SeqCst);
        let result = match &answer {
            Ok((status, headers, body)) => {
                check_answer(&sh, rel, *status, headers, body, before, after)
            }
            Err(e) => Err(format!("request failed: {e}")),
        };
        if let Err(msg) = result {
            sh.fail(format!("GET {url}: {msg}"));
        }
    }
}

/// Runs headless Chromium (bounded by `timeout`) on `url` with `extra` flags.
fn chromium(profile: &Path, extra: &[String], url: &str) -> (String, String) {
    let out = Command::new("timeout")
        .args(["-k", "5", "60", CHROMIUM])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium {url}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Console lines that mean a page did not load cleanly (CSP violations included).
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("Uncaught")
                || (l.contains("CONSOLE") && l.contains("rror"))
                || l.contains("Failed to load resource")
                || l.contains("Content Security Policy")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_serves_whole_builds_across_swaps() {
    if !Path::new(NGINX).exists() {
        // CI installs nginx and sets this, so that a missing nginx fails there.
        assert!(
            std::env::var_os("CTJP_REQUIRE_NGINX").is_none(),
            "{NGINX} is missing but CTJP_REQUIRE_NGINX is set"
        );
        println!("skipped: nginx is not installed");
        return;
    }
    let t0 = Instant::now();
    // Every headers line of the config is one the test checks, with the same CSP.
    let shipped = std::fs::read_to_string(shipped_conf()).unwrap();
    let known = [
        "x-content-type-options",
        "referrer-policy",
        "content-security-policy",
        "access-control-allow-origin",
    ];
    for line in shipped.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("add_header ") {
            let name = rest.split_whitespace().next().unwrap().to_ascii_lowercase();
            assert!(
                known.contains(&name.as_str()),
                "nginx.conf sets {name}, which this test does not check"
            );
            if name == "content-security-policy" {
                assert!(rest.contains(&format!("\"{CSP}\"")), "CSP differs: {line}");
            }
        }
    }

    let db = fixture::TestDb::new().await;
    fixture::fill(&db.pool).await;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("www").join("site");
    let site = Site::new(Config::for_tests());

    // Build 0: the whole production path (fresh folder, render, swap).
    let (first, report) = site.build(&db.pool, &out).await.unwrap();
    let sh = Arc::new(Shared::default());
    sh.builds.write().unwrap().push(Arc::new(record(&first)));
    // Every file of the build, plus the folder URLs nginx answers with index.html.
    let mut urls: Vec<(String, String)> = fixture::files(&first)
        .iter()
        .map(|rel| {
            let rel = rel.to_str().unwrap().to_owned();
            (format!("/{rel}"), rel)
        })
        .collect();
    let pages = urls.len();
    for dir in ["", "logs/", "workers/", "certificates/"] {
        urls.push((format!("/{dir}"), format!("{dir}index.html")));
    }
    assert!(report.pages >= 12, "{report:?}");
    let urls = Arc::new(urls);

    let nginx = Nginx::start(&root.path().join("nginx"), &out);
    let base = nginx.base();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(n, base.clone(), Arc::clone(&urls), Arc::clone(&sh))))
        .collect();

    // Builds 1..=SWAPS: the steps of `Site::build`, with the files recorded
    // between render and publish, and a time of their own (one second
    // apart) so that every build has its own id.
    let deadline = Instant::now() + PHASE;
    let mut swaps = 0;
    for seq in 1..=SWAPS {
        if Instant::now() > deadline {
            break;
        }
        let dir = swap::prepare(&out).unwrap();
        let now = fixture::NOW + i64::try_from(seq).unwrap() * 1000;
        site.build_into(&db.pool, &dir, now).await.unwrap();
        sh.builds.write().unwrap().push(Arc::new(record(&dir)));
        let answered = sh.requests.load(SeqCst);
        swap::publish(&out, &dir).unwrap();
        sh.current.store(seq, SeqCst);
        swaps += 1;
        // Let the clients read this build for a while before the next swap.
        while sh.requests.load(SeqCst) < answered + PER_SWAP
            && Instant::now() < deadline
            && sh.failures.load(SeqCst) == 0
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    sh.stop.store(true, SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let requests = sh.requests.load(SeqCst);
    let failures = sh.failures.load(SeqCst);
    let seen = sh.seen.lock().unwrap().len();
    println!(
        "nginx: {requests} requests of {} URLs ({pages} files) by {CLIENTS} clients over \
         {swaps} swaps, answers from {seen} builds, {failures} failures, {:?}",
        urls.len(),
        t0.elapsed()
    );
    assert_eq!(
        failures,
        0,
        "{:#?}\nnginx log:\n{}",
        sh.messages.lock().unwrap(),
        nginx.logs()
    );
    assert_eq!(swaps, SWAPS, "the swaps did not finish in {PHASE:?}");
    assert!(requests >= SWAPS * PER_SWAP, "{requests} requests");
    assert!(
        seen > SWAPS / 2,
        "answers came from only {seen} of {} builds",
        SWAPS + 1
    );
    // The answers came from this nginx (every request is in its access log).
    let logged_by = Instant::now() + Duration::from_secs(5);
    while nginx.access_log_lines() < requests && Instant::now() < logged_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        nginx.access_log_lines() >= requests,
        "{} access log lines for {requests} requests",
        nginx.access_log_lines()
    );

    // A missing page: 404 with the security headers (`always`).
    let http = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let missing = http
        .get(format!("{base}/no-such-page.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    for (name, want) in &expected_headers("x.html")[..3] {
        assert_eq!(missing.headers()[*name], *want, "404: {name}");
    }
    // gzip for pages and the types of gzip_types, with Vary for caches.
    for (url, rel) in [
        ("/index.html", "index.html"),
        ("/style.css", "style.css"),
        ("/search-index.js", "search-index.js"),
        ("/stats.json", "stats.json"),
    ] {
        let r = http
            .get(format!("{base}{url}"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{url}");
        assert_eq!(r.headers()["content-encoding"], "gzip", "{url}");
        assert_eq!(r.headers()["vary"], "Accept-Encoding", "{url}");
        check_headers(rel, r.headers()).unwrap_or_else(|e| panic!("{url} gzip: {e}"));
    }

    // Headless Chromium through nginx, with the CSP in force.
    if Path::new(CHROMIUM).exists() {
        let profile = tempfile::tempdir().unwrap();
        // Control: an inline script is blocked and the violation is logged,
        // so that the absence of such lines below means something.
        let live = out
            .parent()
            .unwrap()
            .join(std::fs::read_link(&out).unwrap());
        std::fs::write(
            live.join("csp-probe.html"),
            "<!doctype html><html><head><title>probe</title></head><body>\
             <p id=\"p\">inline blocked</p>\
             <script>document.getElementById('p').textContent = 'inline ran';</script>\
             </body></html>\n",
        )
        .unwrap();
        let (dom, stderr) = chromium(
            profile.path(),
            &["--dump-dom".into()],
            &format!("{base}/csp-probe.html"),
        );
        assert!(dom.contains("<p id=\"p\">inline blocked</p>"), "{dom}");
        assert!(stderr.contains("Content Security Policy"), "{stderr}");

        let shots = fixture::target_dir().join("sitegen-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let png = shots.join("nginx-home.png");
        let _ = std::fs::remove_file(&png);
        let (_, stderr) = chromium(
            profile.path(),
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,900".into(),
            ],
            &format!("{base}/"),
        );
        let problems = console_problems(&stderr);
        assert!(problems.is_empty(), "home page: {problems:#?}");
        assert!(std::fs::metadata(&png).unwrap().len() > 10_000);

        let (dom, stderr) = chromium(
            profile.path(),
            &["--dump-dom".into()],
            &format!("{base}/search.html?q=example"),
        );
        let problems = console_problems(&stderr);
        assert!(problems.is_empty(), "search page: {problems:#?}");
        assert!(dom.contains("href=\"domains/example.co.jp.html\""), "{dom}");
        assert!(dom.contains("1 match."), "{dom}");
        println!(
            "chromium: home and search through nginx, no console errors; {}",
            png.display()
        );
    } else {
        assert!(
            std::env::var_os("CTJP_REQUIRE_CHROMIUM").is_none(),
            "{CHROMIUM} is missing but CTJP_REQUIRE_CHROMIUM is set"
        );
        println!("skipped (chromium part): chromium not installed");
    }

    drop(nginx);
    db.drop().await;
    println!("nginx test: {:?}", t0.elapsed());
}
