//! The status page at `/`, checked in a real browser: headless Chromium
//! driven over WebDriver (Debian's `chromium` and `chromium-driver`, which
//! `scripts/test` installs). The assertions read the rendered page — visible
//! text, layout boxes, computed colours — not only the HTML text, and the page
//! must update itself when a new commit is synced, without a reload.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser_binaries() -> (PathBuf, PathBuf) {
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    let driver =
        std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from);
    for bin in [&chromium, &driver] {
        assert!(
            bin.exists(),
            "{} is missing: the status page is tested in a real browser. Install Debian's \
             `chromium` and `chromium-driver` (scripts/test does), or point CHROMIUM and \
             CHROMEDRIVER at them",
            bin.display()
        );
    }
    (chromium, driver)
}

async fn start_driver(driver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    };
    let url = format!("http://127.0.0.1:{port}/status");
    for _ in 0..100 {
        if keelson::http::client().get(&url).send().await.is_ok() {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

async fn browser(d: &Driver, chromium: &Path) -> Client {
    // The flags of a sandboxed, offline machine: no GPU, no background
    // networking (the machine's closed network refuses it), a fresh profile.
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", d._profile.path().display()),
            ]
        }
    });
    let caps = match caps {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    // chromedriver listens on loopback over plain HTTP: no TLS connector.
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("connect to chromedriver")
}

/// Run `script` in the page and return its value. The page swaps its content
/// in every few seconds, so everything a check reads is read in one script:
/// element handles held across WebDriver calls could go stale between them.
async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap()
}

/// The rendered text (`innerText`: what is visible, as laid out) of each cell
/// of app `app`'s matrix row.
async fn row(c: &Client, app: &str) -> Vec<String> {
    let v = js(
        c,
        &format!(
            "return Array.from(document.querySelectorAll('#matrix tr[data-app=\"{app}\"] td')).map(td => td.innerText.trim())"
        ),
    )
    .await;
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_what_runs_where_and_updates_itself() {
    let (chromium, driver) = browser_binaries();
    let (repo, _) = two_env_repo();
    repo.set_tag("prod", "1.4.2");
    repo.set_tag("dev", "1.5.0");
    repo.commit("versions");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_status(&running, "both synced", |st| st["ready"] == true).await;
    // dev breaks: its error, with file:line:col, must be on the page.
    repo.write(
        "environments/dev/pipeline.yaml",
        "tag: 1.6.0\nerror: unknown field `replicaz`\n",
    );
    repo.commit("dev: broken");
    running.trigger();
    wait_status(&running, "dev invalid", |st| {
        env_status(st, "dev")["lastAttempt"]["outcome"]["result"] == "invalid"
    })
    .await;

    let d = start_driver(&driver).await;
    let c = browser(&d, &chromium).await;
    let base = format!("http://{}/", running.addr());
    c.goto(&base).await.unwrap();

    // The matrix as a person sees it: columns dev, prod; the running versions.
    let headers = js(
        &c,
        "return Array.from(document.querySelectorAll('#matrix thead th[data-env]')).map(th => th.dataset.env)",
    )
    .await;
    assert_eq!(headers, serde_json::json!(["dev", "prod"]));
    assert_eq!(row(&c, "web").await, ["1.5.0 healthy", "1.4.2 healthy"]);

    // Rendered, not just present: the matrix has a real box on screen, and
    // the health badge is painted green.
    let m = js(
        &c,
        "const m = document.getElementById('matrix'); const r = m.getBoundingClientRect(); \
         return {visible: m.checkVisibility(), w: r.width, h: r.height, \
         badge: getComputedStyle(m.querySelector('tr[data-app=\"web\"] .badge')).backgroundColor}",
    )
    .await;
    assert_eq!(m["visible"], true, "{m}");
    assert!(
        m["w"].as_f64().unwrap() > 100.0 && m["h"].as_f64().unwrap() > 40.0,
        "matrix box {m}"
    );
    assert_eq!(m["badge"], "rgb(26, 127, 55)", "healthy is green");

    // dev's error names the file, line and column, and is visible.
    let err = js(
        &c,
        "const li = document.querySelector('#env-dev ul.errors li'); \
         return {visible: li.checkVisibility(), text: li.innerText, \
         badge: document.querySelector('#env-dev h3 .badge').innerText}",
    )
    .await;
    assert_eq!(err["visible"], true, "{err}");
    assert_eq!(
        err["text"],
        "environments/dev/pipeline.yaml:2:1: unknown field `replicaz`"
    );
    assert_eq!(err["badge"], "invalid");

    // prod's last sync is in its history, with the object it wrote, once
    // the reader opens it.
    let hidden = js(
        &c,
        "return document.querySelector('#env-prod details ul.changes li').checkVisibility()",
    )
    .await;
    assert_eq!(hidden, false, "closed until opened");
    // A real click; retried if a refresh replaced the element in between.
    for attempt in 1.. {
        let clicked = match c.find(Locator::Css("#env-prod details summary")).await {
            Ok(summary) => summary.click().await.map(drop),
            Err(e) => Err(e),
        };
        match clicked {
            Ok(()) => break,
            Err(e) if attempt >= 3 => panic!("clicking the sync: {e}"),
            Err(_) => continue,
        }
    }
    let opened = js(
        &c,
        "const d = document.querySelector('#env-prod details[open]'); const li = d.querySelector('ul.changes li'); \
         return {key: d.dataset.key, visible: li.checkVisibility(), text: li.innerText}",
    )
    .await;
    assert_eq!(opened["visible"], true, "{opened}");
    assert_eq!(opened["text"], "update Deployment/prod/web");
    let opened_key = opened["key"].as_str().unwrap().to_string();

    let png = c.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot"
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&out, &png).unwrap();
    if std::env::var_os("KEELSON_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png"),
            &png,
        )
        .unwrap();
    }

    // A new version reaches prod: the open page shows it without a reload,
    // and the section the reader opened stays open.
    repo.set_tag("prod", "1.4.3");
    repo.commit("prod: 1.4.3");
    running.trigger();
    wait_status(&running, "prod at 1.4.3", |st| {
        st["matrix"]["apps"]["web"]["prod"]["version"] == "1.4.3"
    })
    .await;
    let marker: serde_json::Value = c
        .execute("window.__notReloaded = true; return true", vec![])
        .await
        .unwrap();
    assert_eq!(marker, true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if row(&c, "web").await == ["1.5.0 healthy", "1.4.3 healthy"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page did not update itself: {:?}",
            row(&c, "web").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let same_page = c
        .execute("return window.__notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, true, "updated in place, not reloaded");
    // The newest sync is now first; the one the reader opened stays open.
    let open = c
        .execute(
            "return Array.from(document.querySelectorAll('#env-prod details')).map(d => [d.dataset.key, d.open])",
            vec![],
        )
        .await
        .unwrap();
    let open: Vec<(String, bool)> = serde_json::from_value(open).unwrap();
    assert_eq!(open.len(), 2, "{open:?}");
    assert_eq!(open[1], (opened_key, true), "{open:?}");
    assert!(!open[0].1, "{open:?}");

    c.close().await.unwrap();
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_escapes_what_it_shows() {
    // Text from Git (commit messages, diagnostics) is data, never markup.
    let (repo, _) = two_env_repo();
    repo.commit("<script>alert(1)</script>");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_status(&running, "synced", |st| st["ready"] == true).await;
    let (code, html) = get(&running, "/").await;
    assert_eq!(code, 200);
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    let (code, fragment) = get(&running, "/?fragment=1").await;
    assert_eq!(code, 200);
    assert!(fragment.contains("id=\"matrix\"") && !fragment.contains("<html"));
    running.shutdown();
    running.wait().await;
}
