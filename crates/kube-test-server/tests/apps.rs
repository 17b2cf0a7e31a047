//! apps/v1 StatefulSets and DaemonSets over HTTP, as a rollout touches them: create, a JSON merge
//! patch of `spec.template.metadata.annotations` (what `kubectl rollout restart` sends), a write
//! to `/status`, and lists (in a namespace and across namespaces).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use kube_test_server::TestApiServer;
use serde_json::{json, Value};

/// One HTTP/1.1 request on its own connection: the status code and the JSON body.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: rollout-test/1.0\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A blocking socket on a blocking thread: the server's runtime stays free.
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        response
    })
    .await
    .expect("request");
    let text = String::from_utf8(response).expect("UTF-8");
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

fn workload(kind: &str) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"team": "a"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
        }
    });
    if kind == "StatefulSet" {
        spec["serviceName"] = json!("web");
        spec["replicas"] = json!(2);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "rollout"},
        "spec": spec,
        // ignored: the status subresource owns it
        "status": {"observedGeneration": 7}
    })
}

/// Create, restart by merge patch, report status, and list one workload kind.
async fn rollout(addr: SocketAddr, plural: &str, kind: &str) {
    let collection = format!("/apis/apps/v1/namespaces/rollout/{plural}");
    let object = format!("{collection}/web");

    let (code, created) = call(addr, "POST", &collection, JSON, Some(&workload(kind))).await;
    assert_eq!(code, 201, "{kind}: {created}");
    assert_eq!(created["kind"], kind);
    assert_eq!(created["apiVersion"], "apps/v1");
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created["status"]["observedGeneration"].is_null(),
        "{created}"
    );

    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT: "2026-12-08T10:00:00Z"
    }}}}});
    let (code, patched) = call(addr, "PATCH", &object, MERGE, Some(&restart)).await;
    assert_eq!(code, 200, "{kind}: {patched}");
    assert_eq!(
        patched["spec"]["template"]["metadata"]["annotations"],
        json!({"team": "a", RESTARTED_AT: "2026-12-08T10:00:00Z"}),
        "{kind}: the annotations are a map, merged key by key"
    );
    assert_eq!(
        patched["metadata"]["generation"], 2,
        "{kind}: the spec moved"
    );
    let managed = patched["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert_eq!(managed.len(), 1, "{kind}: {managed:?}");
    assert_eq!(managed[0]["manager"], "rollout-test");
    assert_eq!(managed[0]["operation"], "Update");
    let annotations =
        &managed[0]["fieldsV1"]["f:spec"]["f:template"]["f:metadata"]["f:annotations"];
    assert!(
        annotations.get(format!("f:{RESTARTED_AT}")).is_some()
            && annotations.get("f:team").is_some(),
        "{kind}: each annotation is owned on its own: {annotations}"
    );

    // The same patch again changes nothing: no new generation.
    let (code, again) = call(addr, "PATCH", &object, MERGE, Some(&restart)).await;
    assert_eq!(code, 200);
    assert_eq!(again["metadata"]["generation"], 2);

    // Status through /status only; it does not move the generation.
    let status = json!({"status": {"observedGeneration": 2}});
    let (code, reported) = call(
        addr,
        "PATCH",
        &format!("{object}/status"),
        MERGE,
        Some(&status),
    )
    .await;
    assert_eq!(code, 200, "{kind}: {reported}");
    assert_eq!(reported["status"]["observedGeneration"], 2);
    assert_eq!(reported["metadata"]["generation"], 2);

    let (code, list) = call(addr, "GET", &collection, JSON, None).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], format!("{kind}List"));
    assert_eq!(list["apiVersion"], "apps/v1");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "web");
    assert!(
        items[0].get("kind").is_none(),
        "built-in list items carry no kind"
    );
    assert_eq!(
        items[0]["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
        "2026-12-08T10:00:00Z"
    );
    let (code, all) = call(addr, "GET", &format!("/apis/apps/v1/{plural}"), JSON, None).await;
    assert_eq!(code, 200);
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_and_daemonsets_are_created_patched_and_listed() {
    let server = TestApiServer::start().await.expect("server");
    let addr = server.addr();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rollout"}});
    let (code, _) = call(addr, "POST", "/api/v1/namespaces", JSON, Some(&ns)).await;
    assert_eq!(code, 201);
    rollout(addr, "statefulsets", "StatefulSet").await;
    rollout(addr, "daemonsets", "DaemonSet").await;

    // Both listed in discovery with their short names and status subresources.
    let (code, apps) = call(addr, "GET", "/apis/apps/v1", JSON, None).await;
    assert_eq!(code, 200);
    let listed: Vec<(&str, Value)> = apps["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default(),
                r["shortNames"].clone(),
            )
        })
        .collect();
    for (name, short) in [
        ("statefulsets", json!(["sts"])),
        ("statefulsets/status", Value::Null),
        ("daemonsets", json!(["ds"])),
        ("daemonsets/status", Value::Null),
    ] {
        assert!(
            listed.contains(&(name, short.clone())),
            "{name} {short}: {listed:?}"
        );
    }
}
