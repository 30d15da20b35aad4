//! A real network remote: `git daemon` on loopback, stopped and restarted
//! under the controller.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// `git daemon` serving `base` on `port` (127.0.0.1 only).
struct Daemon(Child);

impl Daemon {
    fn start(base: &Path, port: u16) -> Daemon {
        // Run git-daemon itself: `git daemon` would run it as a child that
        // outlives a kill of the `git` wrapper.
        let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
        let exec_path = String::from_utf8(exec_path.stdout).unwrap();
        let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon runs");
        // Ready once it accepts connections.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "git daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_daemon_remote_is_followed_through_an_outage() {
    let (repo, first) = two_env_repo();
    let port = free_port();
    let base = repo.path().parent().unwrap();
    let name = repo.path().file_name().unwrap().to_str().unwrap();
    let daemon = Daemon::start(base, port);
    let url = format!("git://127.0.0.1:{port}/{name}");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&url, state.path());
    s.poll_interval = Duration::from_millis(200);
    s.max_backoff = Duration::from_millis(400);
    let running = start(s, &fake).await;
    wait_status(&running, "synced over git://", |st| {
        env_status(st, "prod")["lastApplied"]["commit"] == first.as_str()
    })
    .await;

    drop(daemon);
    let st = wait_status(&running, "the outage shows", |st| {
        st["source"]["error"].is_string()
    })
    .await;
    assert_eq!(
        st["source"]["head"]["id"],
        first.as_str(),
        "still serving the last good commit"
    );
    assert!(st["source"]["consecutiveErrors"].as_u64().unwrap() >= 1);

    repo.set_tag("prod", "1.0.1");
    let second = repo.commit("prod 1.0.1 while keelson cannot see it");
    let _daemon = Daemon::start(base, port);
    running.trigger();
    wait_status(&running, "recovered and synced", |st| {
        st["source"]["error"].is_null()
            && env_status(st, "prod")["lastApplied"]["commit"] == second.as_str()
    })
    .await;
    assert_eq!(fake.tag("prod").as_deref(), Some("1.0.1"));

    // The followed branch deleted on a network remote (the smart protocol's ref
    // advertisement, not the local transport): reported, and the last commit stays.
    let git = git2::Repository::open(repo.path()).unwrap();
    let head = git.head().unwrap().peel_to_commit().unwrap();
    git.branch("release", &head, false).unwrap();
    git.set_head("refs/heads/release").unwrap();
    git.find_branch("main", git2::BranchType::Local)
        .unwrap()
        .delete()
        .unwrap();
    running.trigger();
    let st = wait_status(&running, "the missing branch shows over git://", |st| {
        st["source"]["branchMissing"] == true
    })
    .await;
    assert!(
        st["source"]["error"]
            .as_str()
            .unwrap()
            .contains("branch `main` was not found"),
        "{st}"
    );
    assert_eq!(st["source"]["head"]["id"], second.as_str());
    assert_eq!(
        env_status(&st, "prod")["lastApplied"]["commit"],
        second.as_str()
    );
    assert_eq!(fake.tag("prod").as_deref(), Some("1.0.1"));
    running.shutdown();
    running.wait().await;
}
