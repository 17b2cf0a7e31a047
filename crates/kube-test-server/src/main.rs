//! `kube-test-server`: the test API server as a process of its own, for benchmarks (the
//! controller's memory measured in its own process) and for trying the controller by hand.
//!
//! ```text
//! kube-test-server [--listen 127.0.0.1:0] [--kubeconfig PATH] [--latency-ms N]
//! ```
//! It writes a kubeconfig for itself (default `./kube-test-server.kubeconfig`), prints the
//! path and its URL on one line, and serves until interrupted.

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut kubeconfig = PathBuf::from("kube-test-server.kubeconfig");
    let mut latency_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .unwrap_or_else(|| usage("--listen needs an address"))
            }
            "--kubeconfig" => {
                kubeconfig = args
                    .next()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| usage("--kubeconfig needs a path"))
            }
            "--latency-ms" => {
                latency_ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--latency-ms needs a number of milliseconds"))
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let addr = listen
        .parse()
        .unwrap_or_else(|_| usage(&format!("not an address: {listen}")));
    let server =
        match kube_test_server::TestApiServer::start_on(addr, kube_test_server::DEFAULT_HISTORY)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kube-test-server: cannot listen on {listen}: {e}");
                std::process::exit(1);
            }
        };
    server.set_latency(std::time::Duration::from_millis(latency_ms));
    if let Err(e) = server.write_kubeconfig(&kubeconfig) {
        eprintln!(
            "kube-test-server: cannot write {}: {e}",
            kubeconfig.display()
        );
        std::process::exit(1);
    }
    println!(
        "kube-test-server: serving {} (kubeconfig {})",
        server.url(),
        kubeconfig.display()
    );
    let _ = tokio::signal::ctrl_c().await;
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("kube-test-server: {problem}");
    }
    eprintln!("usage: kube-test-server [--listen ADDR] [--kubeconfig PATH] [--latency-ms N]");
    std::process::exit(2);
}
