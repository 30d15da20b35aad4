//! `kube-apiserver`: run the test server as its own process (for benchmarks driving it with
//! kubectl and keelson). Prints the URL on the first line of stdout, then serves until killed.

use std::net::SocketAddr;
use std::time::Duration;

use kube_apiserver::{ServerOptions, TestServer};

const USAGE: &str = "usage: kube-apiserver [--listen 127.0.0.1:0] [--kubeconfig FILE] [--crd-delay-ms N] [--ready-delay-ms N] [--require-token] [--tls] [--no-request-log]";

fn main() {
    let mut opts = ServerOptions::default();
    let mut kubeconfig = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        let ms = |v: String| {
            Duration::from_millis(v.parse().unwrap_or_else(|_| {
                eprintln!("expected milliseconds, got {v:?}\n{USAGE}");
                std::process::exit(2)
            }))
        };
        match a.as_str() {
            "--listen" => {
                let v = value("--listen");
                opts.listen = v.parse::<SocketAddr>().unwrap_or_else(|_| {
                    eprintln!("--listen wants an address like 127.0.0.1:0, got {v:?}");
                    std::process::exit(2)
                });
            }
            "--kubeconfig" => kubeconfig = Some(value("--kubeconfig")),
            "--crd-delay-ms" => opts.crd_establish_delay = ms(value("--crd-delay-ms")),
            "--ready-delay-ms" => opts.deployment_ready_delay = ms(value("--ready-delay-ms")),
            "--require-token" => opts.require_token = true,
            "--tls" => opts.tls = true,
            "--no-request-log" => opts.record_requests = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let srv = match TestServer::start_blocking_with(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-apiserver: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = kubeconfig
        && let Err(e) = srv.write_kubeconfig(&path)
    {
        eprintln!("kube-apiserver: cannot write kubeconfig {path}: {e}");
        std::process::exit(1);
    }
    println!("{}", srv.url());
    loop {
        std::thread::park();
    }
}
