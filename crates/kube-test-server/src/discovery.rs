//! Discovery documents: `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`,
//! `/version` and the `/openapi/v3` index, built only from the resource types the server serves.
//!
//! Shapes follow what a real kube-apiserver v1.28 answered (discovery.json, aggregated-discovery.json
//! and version.json in the recorded transcripts) and the Kubernetes API documentation for v1.33:
//!
//! * `/api` (`APIVersions`) and `/api/v1` (`APIResourceList`) carry no `apiVersion` key, while
//!   `/apis` (`APIGroupList`), `/apis/<group>` (`APIGroup`) and `/apis/<group>/<version>` carry
//!   `apiVersion: v1`, exactly as recorded.
//! * A group or version no type belongs to is the mux's `text/plain` `404 page not found\n`
//!   (not a `Status`), as ssa-unknown-kind.json shows.
//! * `/openapi/v3` is served as `text/plain; charset=utf-8`, as recorded.
//!
//! # Aggregated discovery: 1.28 versus 1.33
//!
//! `GET /api` and `GET /apis` negotiate on `Accept`, taken in the order the client lists the media
//! types (kube 5 sends `…v=v2;as=APIGroupDiscoveryList,…v=v2beta1;as=APIGroupDiscoveryList,application/json`).
//! The recorded v1.28 server only knew `apidiscovery.k8s.io/v2beta1`: it answered that list with
//! `v2beta1`, and `v2` alone with 406. From Kubernetes 1.30 `apidiscovery.k8s.io/v2` is GA, and 1.33
//! (which this server follows) still serves `v2beta1` too. So this module answers the **first**
//! acceptable of `v2` / `v2beta1` with `Content-Type:
//! application/json;g=apidiscovery.k8s.io;v=<v>;as=APIGroupDiscoveryList` and `apiVersion:
//! apidiscovery.k8s.io/<v>`: kube 5's header gets `v2` here where 1.28 answered `v2beta1`, and
//! `v2` alone is a 200 here where 1.28 answered 406. Both versions have the same shape (recorded
//! v2beta1 bodies; the v2 reference for 1.33). Plain `application/json` (or no `Accept`) gets the
//! unaggregated `APIVersions`/`APIGroupList`; when nothing listed is acceptable the answer is the
//! recorded 406 `NotAcceptable` `Status`.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;

/// One discovery answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Response {
    fn json(status: u16, body: &Value) -> Self {
        Response {
            status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(body).expect("JSON"),
        }
    }

    fn page_not_found() -> Self {
        Response {
            status: 404,
            content_type: "text/plain; charset=utf-8".into(),
            body: b"404 page not found\n".to_vec(),
        }
    }
}

/// The Kubernetes release this server presents itself as (`/version`).
pub const GIT_VERSION: &str = "v1.33.0";

/// The media type (and `apiVersion` suffix) of aggregated discovery.
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
const NOT_ACCEPTABLE: &str =
    "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Built-in groups in the order kube-apiserver lists them (by group priority), as recorded in
/// discovery.json; groups not listed (custom resources) come after, by name.
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// What the client accepts, decided from its `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    Plain,
    Aggregated(&'static str),
}

/// Answer a discovery request; `None` when `path` is not a discovery path (the caller routes it).
/// `path` may carry a query string; it is ignored.
pub fn respond(
    path: &str,
    accept: Option<&str>,
    types: &[ResourceType],
    server_address: &str,
) -> Option<Response> {
    let path = path.split('?').next().unwrap_or_default();
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api"] => Some(match negotiate(accept, true) {
            Some(Wanted::Aggregated(v)) => aggregated(types, true, v),
            Some(Wanted::Plain) => Response::json(200, &api_versions(types, server_address)),
            None => not_acceptable(),
        }),
        ["apis"] => Some(match negotiate(accept, true) {
            Some(Wanted::Aggregated(v)) => aggregated(types, false, v),
            Some(Wanted::Plain) => Response::json(200, &group_list(types)),
            None => not_acceptable(),
        }),
        ["api", version] => Some(plain(accept, || {
            resource_list(types, "", version).map(|b| Response::json(200, &b))
        })),
        ["apis", group] if !group.is_empty() => Some(plain(accept, || {
            api_group(types, group).map(|b| Response::json(200, &b))
        })),
        ["apis", group, version] if !group.is_empty() => Some(plain(accept, || {
            resource_list(types, group, version).map(|b| Response::json(200, &b))
        })),
        ["version"] => Some(Response::json(200, &version_info())),
        ["openapi", "v3"] => Some(Response {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            body: serde_json::to_vec(&openapi_v3_index(types)).expect("JSON"),
        }),
        _ => None,
    }
}

/// Unaggregated documents: plain JSON only; an unknown group/version is the mux's 404.
fn plain(accept: Option<&str>, build: impl FnOnce() -> Option<Response>) -> Response {
    match negotiate(accept, false) {
        Some(_) => build().unwrap_or_else(Response::page_not_found),
        None => not_acceptable(),
    }
}

fn not_acceptable() -> Response {
    Response::json(
        406,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": NOT_ACCEPTABLE,
            "reason": "NotAcceptable",
            "code": 406
        }),
    )
}

/// The first acceptable entry of an `Accept` list, in the order given.
fn negotiate(accept: Option<&str>, aggregated_ok: bool) -> Option<Wanted> {
    let accept = match accept.map(str::trim) {
        None | Some("") => return Some(Wanted::Plain),
        Some(a) => a,
    };
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut g, mut v, mut as_) = (None, None, None);
        for p in parts {
            let Some((k, val)) = p.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            match k.trim() {
                "g" => g = Some(val),
                "v" => v = Some(val),
                "as" => as_ = Some(val),
                _ => {}
            }
        }
        if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        match (g, v, as_) {
            (None, None, None) => return Some(Wanted::Plain),
            (Some(DISCOVERY_GROUP), Some(ver), Some("APIGroupDiscoveryList")) if aggregated_ok => {
                match ver {
                    "v2" => return Some(Wanted::Aggregated("v2")),
                    "v2beta1" => return Some(Wanted::Aggregated("v2beta1")),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    None
}

fn api_versions(types: &[ResourceType], server_address: &str) -> Value {
    let mut versions: Vec<String> = Vec::new();
    for t in types.iter().filter(|t| t.group.is_empty()) {
        if !versions.contains(&t.version) {
            versions.push(t.version.clone());
        }
    }
    versions.sort_by(|a, b| version_priority(a, b));
    json!({
        "kind": "APIVersions",
        "versions": versions,
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

/// Non-core groups in discovery order, each with its versions in priority order.
fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                if !vs.contains(&t.version) {
                    vs.push(t.version.clone())
                }
            }
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    for (_, vs) in &mut out {
        vs.sort_by(|a, b| version_priority(a, b));
    }
    let rank = |g: &str| GROUP_ORDER.iter().position(|k| *k == g);
    out.sort_by(|(a, _), (b, _)| match (rank(a), rank(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    out
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn group_entry(group: &str, versions: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(group));
    m.insert(
        "versions".into(),
        Value::Array(versions.iter().map(|v| group_version(group, v)).collect()),
    );
    m.insert(
        "preferredVersion".into(),
        group_version(group, &versions[0]),
    );
    m
}

fn group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(g, vs)| Value::Object(group_entry(g, vs)))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn api_group(types: &[ResourceType], group: &str) -> Option<Value> {
    let (g, vs) = groups(types).into_iter().find(|(g, _)| g == group)?;
    let mut m = Map::new();
    m.insert("kind".into(), json!("APIGroup"));
    m.insert("apiVersion".into(), json!("v1"));
    m.extend(group_entry(&g, &vs));
    Some(Value::Object(m))
}

/// The verbs of a resource: built-in order, or the order apiextensions-apiserver lists (recorded
/// for a custom resource in aggregated-discovery.json).
fn verbs(t: &ResourceType) -> Vec<&'static str> {
    if t.builtin {
        t.verbs()
    } else {
        vec![
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ]
    }
}

const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

fn types_in<'a>(types: &'a [ResourceType], group: &str, version: &str) -> Vec<&'a ResourceType> {
    let mut v: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    v.sort_by(|a, b| a.plural.cmp(&b.plural));
    v.dedup_by(|a, b| a.plural == b.plural);
    v
}

fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let served = types_in(types, group, version);
    if served.is_empty() {
        return None;
    }
    let mut resources: Vec<(String, Value)> = Vec::new();
    for t in served {
        let mut r = Map::new();
        r.insert("name".into(), json!(t.plural));
        r.insert("singularName".into(), json!(t.singular));
        r.insert("namespaced".into(), json!(t.namespaced));
        r.insert("kind".into(), json!(t.kind));
        r.insert("verbs".into(), json!(verbs(t)));
        if !t.short_names.is_empty() {
            r.insert("shortNames".into(), json!(t.short_names));
        }
        if !t.categories.is_empty() {
            r.insert("categories".into(), json!(t.categories));
        }
        if let Some(h) = &t.storage_version_hash {
            r.insert("storageVersionHash".into(), json!(h));
        }
        resources.push((t.plural.clone(), Value::Object(r)));
        if t.group.is_empty() && t.kind == "ServiceAccount" {
            resources.push((
                "serviceaccounts/token".into(),
                json!({
                    "name": "serviceaccounts/token",
                    "singularName": "",
                    "namespaced": true,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"]
                }),
            ));
        }
        if t.status_subresource {
            let name = format!("{}/status", t.plural);
            resources.push((
                name.clone(),
                json!({
                    "name": name,
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": STATUS_VERBS
                }),
            ));
        }
    }
    resources.sort_by(|a, b| a.0.cmp(&b.0));
    let resources: Vec<Value> = resources.into_iter().map(|(_, v)| v).collect();
    let mut m = Map::new();
    m.insert("kind".into(), json!("APIResourceList"));
    if !group.is_empty() {
        // The legacy core group's list has no apiVersion (recorded /api/v1); groups' lists do.
        m.insert("apiVersion".into(), json!("v1"));
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    m.insert("groupVersion".into(), json!(gv));
    m.insert("resources".into(), Value::Array(resources));
    Some(Value::Object(m))
}

/// `responseKind`: built-in kinds leave group and version empty (the resource's own), custom
/// resources name them (both as recorded).
fn response_kind(t: &ResourceType) -> Value {
    if t.builtin {
        json!({"group": "", "version": "", "kind": t.kind})
    } else {
        json!({"group": t.group, "version": t.version, "kind": t.kind})
    }
}

fn discovery_version(types: &[ResourceType], group: &str, version: &str) -> Value {
    let resources: Vec<Value> = types_in(types, group, version)
        .into_iter()
        .map(|t| {
            let mut r = Map::new();
            r.insert("resource".into(), json!(t.plural));
            r.insert("responseKind".into(), response_kind(t));
            r.insert(
                "scope".into(),
                json!(if t.namespaced {
                    "Namespaced"
                } else {
                    "Cluster"
                }),
            );
            r.insert("singularResource".into(), json!(t.singular));
            r.insert("verbs".into(), json!(verbs(t)));
            if !t.short_names.is_empty() {
                r.insert("shortNames".into(), json!(t.short_names));
            }
            if !t.categories.is_empty() {
                r.insert("categories".into(), json!(t.categories));
            }
            if t.status_subresource {
                r.insert(
                    "subresources".into(),
                    json!([{
                        "subresource": "status",
                        "responseKind": response_kind(t),
                        "verbs": STATUS_VERBS
                    }]),
                );
            }
            if t.group.is_empty() && t.kind == "ServiceAccount" {
                // Listed as kube-apiserver lists it (TokenRequest); not served here.
                r.insert(
                    "subresources".into(),
                    json!([{
                        "subresource": "token",
                        "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"},
                        "verbs": ["create"]
                    }]),
                );
            }
            Value::Object(r)
        })
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

fn aggregated(types: &[ResourceType], core: bool, v: &str) -> Response {
    let items: Vec<Value> =
        if core {
            let versions = match api_versions(types, "")["versions"].as_array() {
                Some(vs) if !vs.is_empty() => vs
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|ver| discovery_version(types, "", ver))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            };
            if versions.is_empty() {
                Vec::new()
            } else {
                vec![json!({"metadata": {"creationTimestamp": null}, "versions": versions})]
            }
        } else {
            groups(types)
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> =
                    vs.iter().map(|ver| discovery_version(types, g, ver)).collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
        };
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("{DISCOVERY_GROUP}/{v}"),
        "metadata": {},
        "items": items
    });
    Response {
        status: 200,
        content_type: format!(
            "application/json;g={DISCOVERY_GROUP};v={v};as=APIGroupDiscoveryList"
        ),
        body: serde_json::to_vec(&body).expect("JSON"),
    }
}

/// `/version`: the recorded key set (version.json), with an upstream v1.33.0 build's values since
/// this server follows Kubernetes 1.33.
fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:04:56Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// The `/openapi/v3` index: `{"paths": {"<path>": {"serverRelativeURL": "/openapi/v3/<path>?hash=…"}}}`
/// with keys sorted (as Go writes a map). Built-in groups list `apis/<group>` and
/// `apis/<group>/<version>`, custom resource groups only `apis/<group>/<version>` (both as
/// recorded). The hash is 128 upper-case hex digits, like the real SHA-512, derived from the path
/// and the types served there so that it changes when they do.
pub fn openapi_v3_index(types: &[ResourceType]) -> Value {
    let mut paths: Vec<(String, String)> = Vec::new();
    let mut add = |p: String, seed: String| paths.push((p, seed));
    let core: Vec<&ResourceType> = types.iter().filter(|t| t.group.is_empty()).collect();
    add("api".into(), "api".into());
    let mut core_versions: Vec<&str> = core.iter().map(|t| t.version.as_str()).collect();
    core_versions.dedup();
    for v in core_versions {
        add(format!("api/{v}"), describe(types, "", v));
    }
    add("apis".into(), "apis".into());
    for (g, vs) in groups(types) {
        let builtin = types.iter().any(|t| t.group == g && t.builtin);
        if builtin {
            add(format!("apis/{g}"), format!("group {g}"));
        }
        for v in vs {
            add(format!("apis/{g}/{v}"), describe(types, &g, &v));
        }
    }
    add("version".into(), "version".into());
    paths.sort();
    paths.dedup_by(|a, b| a.0 == b.0);
    let mut m = Map::new();
    for (p, seed) in paths {
        m.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash512(&seed))}),
        );
    }
    json!({ "paths": m })
}

fn describe(types: &[ResourceType], group: &str, version: &str) -> String {
    let mut s = format!("{group}/{version}");
    for t in types_in(types, group, version) {
        s.push(' ');
        s.push_str(&t.plural);
        if let Some(schema) = &t.openapi_schema {
            s.push_str(&schema.to_string());
        }
    }
    s
}

/// 128 hex digits from eight seeded FNV-1a passes (not cryptographic; only needs to change with
/// its input, as the index's hashes do).
fn hash512(input: &str) -> String {
    let mut out = String::with_capacity(128);
    for seed in 0u64..8 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in input.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016X}"));
    }
    out
}

/// Kubernetes version priority: GA before beta before alpha, higher major (then minor) first;
/// versions not of the `v<N>[alpha|beta<M>]` form after those, by name.
fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        for (word, rank) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(n) = tail.strip_prefix(word) {
                let minor: u64 = n.parse().ok()?;
                return Some((rank, major, minor));
            }
        }
        None
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{builtins, from_crd};

    const KUBE5_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    fn gadget_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.smp.example.com"},
            "spec": {
                "group": "smp.example.com",
                "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}}
                }]
            }
        })
    }

    fn types() -> Vec<ResourceType> {
        let mut t = builtins();
        t.extend(from_crd(&gadget_crd()));
        t
    }

    fn get(path: &str, accept: Option<&str>) -> (Response, Value) {
        let r = respond(path, accept, &types(), "127.0.0.1:16443").expect("discovery path");
        let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r, v)
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name || r["resource"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    }

    #[test]
    fn not_a_discovery_path() {
        assert!(respond("/api/v1/namespaces", None, &types(), "x").is_none());
        assert!(respond("/apis/apps/v1/deployments", None, &types(), "x").is_none());
        assert!(respond("/healthz", None, &types(), "x").is_none());
    }

    /// discovery.json `/api`: APIVersions without apiVersion, serverAddressByClientCIDRs.
    #[test]
    fn api_versions_as_recorded() {
        let (r, v) = get("/api", None);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(
            v,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:16443"}]})
        );
        assert_eq!(keys(&v), ["kind", "versions", "serverAddressByClientCIDRs"]);
        // plain JSON is what a client gets when it lists only application/json
        let (_, v) = get("/api", Some("application/json"));
        assert_eq!(v["kind"], "APIVersions");
    }

    /// discovery.json `/api/v1`: no apiVersion key; entries as recorded; `namespaces/status`.
    #[test]
    fn core_resource_list_as_recorded() {
        let (r, v) = get("/api/v1", None);
        assert_eq!(r.status, 200);
        assert_eq!(keys(&v), ["kind", "groupVersion", "resources"]);
        assert_eq!(v["groupVersion"], "v1");
        assert_eq!(
            resource(&v, "configmaps"),
            &json!({"name": "configmaps", "singularName": "configmap", "namespaced": true,
                "kind": "ConfigMap", "verbs": ["create", "delete", "deletecollection", "get", "list",
                "patch", "update", "watch"], "shortNames": ["cm"], "storageVersionHash": "qFsyl6wFWjQ="})
        );
        assert_eq!(
            resource(&v, "namespaces"),
            &json!({"name": "namespaces", "singularName": "namespace", "namespaced": false,
                "kind": "Namespace", "verbs": ["create", "delete", "get", "list", "patch", "update",
                "watch"], "shortNames": ["ns"], "storageVersionHash": "Q3oi5N2YM8M="})
        );
        assert_eq!(
            resource(&v, "namespaces/status"),
            &json!({"name": "namespaces/status", "singularName": "", "namespaced": false,
                "kind": "Namespace", "verbs": ["get", "patch", "update"]})
        );
        assert_eq!(
            resource(&v, "services"),
            &json!({"name": "services", "singularName": "service", "namespaced": true,
                "kind": "Service", "verbs": ["create", "delete", "deletecollection", "get", "list",
                "patch", "update", "watch"], "shortNames": ["svc"], "categories": ["all"],
                "storageVersionHash": "0/CO1lhkEBI="})
        );
        let names: Vec<&str> = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // only served resources: nothing the registry does not have
        assert!(!names.contains(&"pods"));
        assert!(!names.contains(&"secrets/status"));
    }

    /// discovery.json `/apis/coordination.k8s.io/v1`: apiVersion present.
    #[test]
    fn group_resource_list_as_recorded() {
        let (r, v) = get("/apis/coordination.k8s.io/v1", None);
        assert_eq!(r.status, 200);
        assert_eq!(
            v,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "coordination.k8s.io/v1",
            "resources": [{"name": "leases", "singularName": "lease", "namespaced": true, "kind": "Lease",
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "storageVersionHash": "gqkMMb/YqFM="}]})
        );
        assert_eq!(
            keys(&v),
            ["kind", "apiVersion", "groupVersion", "resources"]
        );
    }

    #[test]
    fn custom_resource_list() {
        let (_, v) = get("/apis/smp.example.com/v1", None);
        assert_eq!(
            v["resources"],
            json!([
                {"name": "gadgets", "singularName": "gadget", "namespaced": true, "kind": "Gadget",
                 "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
                 "storageVersionHash": crate::registry::storage_version_hash("smp.example.com", "v1", "Gadget")},
                {"name": "gadgets/status", "singularName": "", "namespaced": true, "kind": "Gadget",
                 "verbs": ["get", "patch", "update"]}
            ])
        );
    }

    /// ssa-unknown-kind.json: `GET /apis/db.example.dev/v1` is text/plain `404 page not found`.
    #[test]
    fn unknown_group_version_is_page_not_found() {
        for p in [
            "/apis/db.example.dev/v1",
            "/apis/db.example.dev",
            "/apis/apps/v2",
            "/api/v2",
        ] {
            let r = respond(p, None, &types(), "x").unwrap();
            assert_eq!(r.status, 404, "{p}");
            assert_eq!(r.content_type, "text/plain; charset=utf-8");
            assert_eq!(r.body, b"404 page not found\n");
        }
    }

    /// discovery.json `/apis`: APIGroupList with apiVersion, recorded group order, preferredVersion.
    #[test]
    fn group_list_as_recorded() {
        let (_, v) = get("/apis", None);
        assert_eq!(keys(&v), ["kind", "apiVersion", "groups"]);
        assert_eq!(v["kind"], "APIGroupList");
        assert_eq!(v["apiVersion"], "v1");
        let names: Vec<&str> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "events.k8s.io",
                "rbac.authorization.k8s.io",
                "apiextensions.k8s.io",
                "coordination.k8s.io",
                "smp.example.com"
            ]
        );
        assert_eq!(
            v["groups"][0],
            json!({"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
        );
    }

    #[test]
    fn api_group_and_preferred_version() {
        let mut t = types();
        let mut crd = gadget_crd();
        crd["spec"]["versions"] = json!([
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v1", "served": true, "storage": true},
            {"name": "v2alpha1", "served": true, "storage": false},
            {"name": "v0", "served": false, "storage": false}
        ]);
        t.retain(|x| x.group != "smp.example.com");
        t.extend(from_crd(&crd));
        let r = respond("/apis/smp.example.com", None, &t, "x").unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": "smp.example.com",
                "versions": [
                    {"groupVersion": "smp.example.com/v1", "version": "v1"},
                    {"groupVersion": "smp.example.com/v1beta1", "version": "v1beta1"},
                    {"groupVersion": "smp.example.com/v2alpha1", "version": "v2alpha1"}],
                "preferredVersion": {"groupVersion": "smp.example.com/v1", "version": "v1"}})
        );
        assert_eq!(version_priority("v2", "v1"), Ordering::Less);
        assert_eq!(version_priority("v1", "v2beta1"), Ordering::Less);
        assert_eq!(version_priority("v1beta2", "v1beta1"), Ordering::Less);
        assert_eq!(version_priority("v1alpha1", "foo"), Ordering::Less);
    }

    /// aggregated-discovery.json with kube 5's Accept: 1.28 said v2beta1, 1.33 (followed) says v2.
    #[test]
    fn aggregated_apis_prefers_v2() {
        let (r, v) = get("/apis", Some(KUBE5_ACCEPT));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.content_type,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert_eq!(keys(&v), ["kind", "apiVersion", "metadata", "items"]);
        assert_eq!(v["kind"], "APIGroupDiscoveryList");
        assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(v["metadata"], json!({}));
        let coordination = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "coordination.k8s.io")
            .unwrap();
        // recorded item, byte for byte in shape
        assert_eq!(
            coordination,
            &json!({"metadata": {"name": "coordination.k8s.io", "creationTimestamp": null},
                "versions": [{"version": "v1", "resources": [{"resource": "leases",
                "responseKind": {"group": "", "version": "", "kind": "Lease"}, "scope": "Namespaced",
                "singularResource": "lease", "verbs": ["create", "delete", "deletecollection", "get",
                "list", "patch", "update", "watch"]}], "freshness": "Current"}]})
        );
        let crd = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apiextensions.k8s.io")
            .unwrap();
        assert_eq!(
            crd["versions"][0]["resources"][0],
            json!({"resource": "customresourcedefinitions", "responseKind": {"group": "", "version": "",
                "kind": "CustomResourceDefinition"}, "scope": "Cluster",
                "singularResource": "customresourcedefinition", "verbs": ["create", "delete",
                "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["crd", "crds"], "categories": ["api-extensions"], "subresources": [{"subresource": "status",
                "responseKind": {"group": "", "version": "", "kind": "CustomResourceDefinition"},
                "verbs": ["get", "patch", "update"]}]})
        );
        // the custom resource group, as recorded (responseKind names group and version)
        let last = v["items"].as_array().unwrap().last().unwrap();
        assert_eq!(
            last,
            &json!({"metadata": {"name": "smp.example.com", "creationTimestamp": null}, "versions": [{
                "version": "v1", "resources": [{"resource": "gadgets", "responseKind": {"group":
                "smp.example.com", "version": "v1", "kind": "Gadget"}, "scope": "Namespaced",
                "singularResource": "gadget", "verbs": ["delete", "deletecollection", "get", "list",
                "patch", "create", "update", "watch"], "subresources": [{"subresource": "status",
                "responseKind": {"group": "smp.example.com", "version": "v1", "kind": "Gadget"},
                "verbs": ["get", "patch", "update"]}]}], "freshness": "Current"}]})
        );
    }

    /// aggregated-discovery.json `/api`: one item without a name; namespaces with status.
    #[test]
    fn aggregated_core() {
        let (r, v) = get("/api", Some(KUBE5_ACCEPT));
        assert_eq!(r.status, 200);
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"], json!({"creationTimestamp": null}));
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        assert_eq!(
            resource(v1, "secrets"),
            &json!({"resource": "secrets", "responseKind": {"group": "", "version": "", "kind": "Secret"},
                "scope": "Namespaced", "singularResource": "secret", "verbs": ["create", "delete",
                "deletecollection", "get", "list", "patch", "update", "watch"]})
        );
        let ns = resource(v1, "namespaces");
        assert_eq!(ns["scope"], "Cluster");
        assert_eq!(
            ns["subresources"],
            json!([{"subresource": "status", "responseKind": {"group": "", "version": "", "kind": "Namespace"},
                "verbs": ["get", "patch", "update"]}])
        );
    }

    /// aggregated-discovery.json `/apis`, group `apps`: the workloads a rollout patches, in the
    /// recorded order and shapes (the recorded `scale` subresource is not served, so not listed).
    #[test]
    fn aggregated_apps_as_recorded() {
        let (_, v) = get("/apis", Some(KUBE5_ACCEPT));
        let apps = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let v1 = &apps["versions"][0];
        assert_eq!(v1["version"], "v1");
        let names: Vec<&str> = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["daemonsets", "deployments", "statefulsets"]);
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        for (plural, kind, short) in [
            ("daemonsets", "DaemonSet", "ds"),
            ("deployments", "Deployment", "deploy"),
            ("statefulsets", "StatefulSet", "sts"),
        ] {
            assert_eq!(
                resource(v1, plural),
                &json!({"resource": plural, "responseKind": {"group": "", "version": "", "kind": kind},
                    "scope": "Namespaced", "singularResource": kind.to_ascii_lowercase(),
                    "verbs": verbs, "shortNames": [short], "categories": ["all"],
                    "subresources": [{"subresource": "status", "responseKind": {"group": "",
                    "version": "", "kind": kind}, "verbs": ["get", "patch", "update"]}]}),
                "{plural}"
            );
        }
        let (r, v) = get("/apis/apps/v1", None);
        assert_eq!(r.status, 200);
        let names: Vec<&str> = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "statefulsets",
                "statefulsets/status"
            ]
        );
        assert_eq!(
            resource(&v, "statefulsets"),
            &json!({"name": "statefulsets", "singularName": "statefulset", "namespaced": true,
                "kind": "StatefulSet", "verbs": verbs, "shortNames": ["sts"], "categories": ["all"],
                "storageVersionHash": "H+vl74LkKdo="})
        );
        // the hashes a real kube-apiserver publishes for apps/v1
        assert_eq!(
            resource(&v, "daemonsets")["storageVersionHash"],
            "dd7pWHUlMKQ="
        );
        assert_eq!(
            resource(&v, "deployments")["storageVersionHash"],
            "8aSe+NMegvE="
        );
    }

    /// aggregated-discovery.json: v2beta1 alone is answered with v2beta1.
    #[test]
    fn aggregated_v2beta1_alone() {
        let (r, v) = get(
            "/apis",
            Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.content_type,
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
        assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        // the preference order of the list decides, not the version
        let (r, _) = get(
            "/api",
            Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        );
        assert!(r.content_type.contains("v=v2beta1;"));
        // 1.28 answered v2 alone with 406; 1.33 serves it
        let (r, _) = get(
            "/apis",
            Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        );
        assert_eq!(r.status, 200);
    }

    /// aggregated-discovery.json: the recorded 406 Status when nothing listed is acceptable.
    #[test]
    fn not_acceptable_as_recorded() {
        let (r, v) = get(
            "/apis",
            Some("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"),
        );
        assert_eq!(r.status, 406);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(
            v,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
                "reason": "NotAcceptable", "code": 406})
        );
        assert_eq!(
            keys(&v),
            [
                "kind",
                "apiVersion",
                "metadata",
                "status",
                "message",
                "reason",
                "code"
            ]
        );
        // aggregated discovery exists only for /api and /apis
        let (r, _) = get(
            "/api/v1",
            Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        );
        assert_eq!(r.status, 406);
        let (r, _) = get("/api/v1", Some("application/json, */*"));
        assert_eq!(r.status, 200);
    }

    /// version.json: the recorded key set, a 1.33 build.
    #[test]
    fn version_key_set() {
        let (r, v) = get("/version", None);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(
            keys(&v),
            [
                "major",
                "minor",
                "gitVersion",
                "gitCommit",
                "gitTreeState",
                "buildDate",
                "goVersion",
                "compiler",
                "platform"
            ]
        );
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.33."));
    }

    /// version.json `/openapi/v3`: text/plain; built-in groups with and without version, custom
    /// resource groups only with it; 128-digit upper-case hashes.
    #[test]
    fn openapi_v3_index_as_recorded() {
        let r = respond("/openapi/v3", None, &types(), "x").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let paths = v["paths"].as_object().unwrap();
        let names: Vec<&str> = paths.keys().map(String::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for p in [
            "api",
            "api/v1",
            "apis",
            "apis/apps",
            "apis/apps/v1",
            "apis/coordination.k8s.io/v1",
            "apis/smp.example.com/v1",
            "version",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert!(!paths.contains_key("apis/smp.example.com"));
        let url = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
        let (prefix, hash) = url.split_once("?hash=").unwrap();
        assert_eq!(prefix, "/openapi/v3/apis/apps/v1");
        assert_eq!(hash.len(), 128);
        assert!(hash
            .chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)));
    }
}
