//! The HTTP face: route a request to discovery, a collection or an object, apply injected
//! faults, and write the answer as kube-apiserver does. What the request asks for (target,
//! query, representation) is read by [`crate::request`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::object;
use crate::registry::ResourceType;
use crate::request::{negotiate, parse_target, represent, Query, Repr};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::Failure;
use crate::store::{FieldValidation, PatchKind, WriteOptions};
use crate::watch;
use crate::{discovery, Shared};

/// The largest body the server reads (kube-apiserver's limit is 3 MiB for most requests).
const MAX_BODY: usize = 3 * 1024 * 1024 + 1024;

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(w) {
            r.headers_mut().append("warning", v);
        }
    }
    r
}

pub fn failure_response(f: Failure) -> Response {
    let mut r = match f.text {
        Some(text) => {
            let mut r = Response::new(Body::from(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r.headers_mut().insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            *r.status_mut() = StatusCode::from_u16(f.code).unwrap_or(StatusCode::NOT_FOUND);
            r
        }
        None => json_response(f.code, &f.body, &[]),
    };
    if let Some(s) = f.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// The default field manager: the User-Agent up to its first `/`, as kube-apiserver derives it.
fn default_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/').next().unwrap_or(ua).to_string()
}

pub async fn handle(AxumState(shared): AxumState<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if let Some(user) = req
        .headers()
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    {
        let mut seen = shared.impersonations.lock().expect("impersonations");
        if seen.len() < 10_000 {
            seen.push((format!("{} {path}", req.method()), user.to_string()));
        }
    }
    shared.faults.hold(req.method(), &path).await;
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some((failure, delay)) = shared.faults.take(req.method(), &path) {
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if let Some(f) = failure {
            return failure_response(f);
        }
    }
    match route(shared, req).await {
        Ok(r) => r,
        Err(f) => failure_response(f),
    }
}

async fn route(shared: Arc<Shared>, req: Request) -> Result<Response, Failure> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();

    if parts.method == Method::GET {
        let types = shared.state.lock().expect("state").types.clone();
        if let Some(d) = discovery::respond(&path, accept.as_deref(), &types, &shared.address()) {
            let mut r = Response::new(Body::from(d.body));
            *r.status_mut() = StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK);
            if let Ok(v) = HeaderValue::from_str(&d.content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            return Ok(r);
        }
        if path == "/healthz" || path == "/readyz" || path == "/livez" {
            return Ok(Response::new(Body::from("ok")));
        }
    }

    let target = parse_target(&path).ok_or_else(Failure::page_not_found)?;
    let rt = {
        let st = shared.state.lock().expect("state");
        st.find_type(&target.group, &target.version, &target.plural)
            .cloned()
            .ok_or_else(Failure::page_not_found)?
    };
    if rt.namespaced != target.namespace.is_some() && target.name.is_some() {
        return Err(Failure::page_not_found());
    }
    if !rt.namespaced && target.namespace.is_some() {
        return Err(Failure::page_not_found());
    }
    match target.subresource.as_deref() {
        None => {}
        Some("status") if rt.status_subresource => {}
        Some(_) => return Err(Failure::page_not_found()),
    }
    let ns = target.namespace.as_deref();
    let sub = target.subresource.as_deref();
    let repr = negotiate(accept.as_deref());

    let body_bytes = if matches!(
        parts.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            Failure::status(
                413,
                "RequestEntityTooLarge",
                "the request body is too large",
                None,
            )
        })?
    } else {
        Bytes::new()
    };

    let opts = || -> Result<WriteOptions, Failure> {
        let dry_run = match query.get("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "Invalid dry run value: {other}"
                )))
            }
        };
        let field_validation = match query.get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "fieldValidation must be one of Ignore, Warn, Strict; got {other}"
                )))
            }
        };
        let manager = query.get("fieldManager").map(str::to_string);
        Ok(WriteOptions {
            dry_run,
            manager_given: manager.is_some(),
            manager: manager.unwrap_or_else(|| default_manager(&parts.headers)),
            force: query.flag("force"),
            field_validation,
        })
    };

    match (parts.method.clone(), target.name.as_deref()) {
        (Method::GET, None) => {
            let repr = repr?;
            if query.flag("watch") {
                return watch::serve(shared, rt, ns.map(str::to_string), &query, repr);
            }
            list(&shared, &rt, ns, &query, repr)
        }
        (Method::GET, Some(name)) => {
            let repr = repr?;
            if repr == Repr::PartialList {
                return Err(Failure::status(406, "NotAcceptable", format!("you requested PartialObjectMetadataList, but the requested object is not a list ({})", go_type(&rt, false)), None));
            }
            let st = shared.state.lock().expect("state");
            let obj = st
                .get(&rt, ns.unwrap_or_default(), name)
                .ok_or_else(|| Failure::not_found(&rt, name))?;
            let obj = crate::store::State::present(&rt, obj);
            Ok(json_response(200, &represent(&obj, repr), &[]))
        }
        (Method::POST, None) => {
            let obj = parse_body(&content_type, &body_bytes, &rt)?;
            let opts = opts()?;
            let w = shared
                .state
                .lock()
                .expect("state")
                .create(&rt, ns, obj, &opts)?;
            Ok(json_response(
                w.code,
                &crate::store::State::present(&rt, &w.object),
                &w.warnings,
            ))
        }
        (Method::PUT, Some(name)) => {
            let obj = parse_body(&content_type, &body_bytes, &rt)?;
            let opts = opts()?;
            let w = shared
                .state
                .lock()
                .expect("state")
                .update(&rt, ns, name, sub, obj, &opts)?;
            Ok(json_response(
                w.code,
                &crate::store::State::present(&rt, &w.object),
                &w.warnings,
            ))
        }
        (Method::PATCH, Some(name)) => {
            let mime = content_type.split(';').next().unwrap_or_default().trim();
            let kind = match mime {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
                _ => {
                    return Err(Failure::status(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
                        None,
                    ))
                }
            };
            let body = if kind == PatchKind::Apply {
                parse_yaml(&body_bytes)?
            } else {
                serde_json::from_slice(&body_bytes)
                    .map_err(|e| Failure::bad_request(format!("error decoding patch: {e}")))?
            };
            let opts = opts()?;
            let w = shared
                .state
                .lock()
                .expect("state")
                .patch(&rt, ns, name, sub, kind, &body, &opts)?;
            Ok(json_response(
                w.code,
                &crate::store::State::present(&rt, &w.object),
                &w.warnings,
            ))
        }
        (Method::DELETE, Some(name)) => {
            let options: Value = if body_bytes.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&body_bytes).map_err(|e| {
                    Failure::bad_request(format!("error decoding DeleteOptions: {e}"))
                })?
            };
            let dry_run = opts()?.dry_run
                || options["dryRun"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
            let v = shared
                .state
                .lock()
                .expect("state")
                .delete(&rt, ns, name, &options, dry_run)?;
            Ok(json_response(200, &v, &[]))
        }
        _ => Err(Failure::method_not_allowed()),
    }
}

/// How a Go type name appears in NotAcceptable messages.
fn go_type(rt: &ResourceType, list: bool) -> String {
    if !rt.builtin {
        return if list {
            "*unstructured.UnstructuredList".into()
        } else {
            "*unstructured.Unstructured".into()
        };
    }
    let pkg = match rt.group.as_str() {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("*{pkg}.{}{}", rt.kind, if list { "List" } else { "" })
}

fn parse_json(bytes: &[u8], rt: &ResourceType) -> Result<Value, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        Failure::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            rt.kind, rt.version, rt.kind
        ))
    })
}

/// A POST or PUT body: JSON or YAML by Content-Type. Protobuf is not served (kube-rs speaks
/// JSON); other media types are 415 as on the real server.
fn parse_body(content_type: &str, bytes: &[u8], rt: &ResourceType) -> Result<Value, Failure> {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "" | "application/json" => parse_json(bytes, rt),
        "application/yaml" => parse_yaml(bytes),
        _ => Err(Failure::status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            None,
        )),
    }
}

/// An apply body: YAML (of which JSON is a subset).
fn parse_yaml(bytes: &[u8]) -> Result<Value, Failure> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Failure::bad_request("error decoding YAML: invalid UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| Failure::bad_request(format!("error decoding YAML: {e}")))
}

fn list(
    shared: &Shared,
    rt: &ResourceType,
    ns: Option<&str>,
    query: &Query,
    repr: Repr,
) -> Result<Response, Failure> {
    if repr == Repr::Partial {
        return Err(Failure::status(
            406,
            "NotAcceptable",
            format!(
                "you requested PartialObjectMetadata, but the requested object is a list ({})",
                go_type(rt, true)
            ),
            None,
        ));
    }
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(Failure::bad_request)?;
    let fields_sel = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default(), rt)
        .map_err(Failure::bad_request)?;
    let selective = !query.get("labelSelector").unwrap_or_default().is_empty()
        || !query.get("fieldSelector").unwrap_or_default().is_empty();
    let st = shared.state.lock().expect("state");
    let mut rv = st.rv;
    let (start, token_rv) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (start, trv) = decode_continue(token)?;
            (Some(start), Some(trv))
        }
        None => (None, None),
    };
    if let Some(t) = token_rv {
        rv = t;
    }
    // resourceVersion=0 is served from the cache and ignores limit (as recorded).
    let limit = match query.get("resourceVersion") {
        Some("0") => None,
        _ => query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0),
    };
    // Selectors see the object as this version shows it (Events have two views).
    let all: Vec<Value> = st
        .list(rt, ns)
        .into_iter()
        .filter(|o| {
            let key = continue_key(o, ns.is_none());
            start.as_ref().is_none_or(|s| key.as_str() >= s.as_str())
        })
        .map(|o| crate::store::State::present(rt, o))
        .filter(|o| labels.matches(object::labels(o)) && fields_sel.matches(o))
        .collect();
    let mut items = Vec::new();
    let mut cont = None;
    for (i, o) in all.iter().enumerate() {
        if limit.is_some_and(|l| i >= l) {
            let next = continue_key(o, ns.is_none());
            cont = Some((encode_continue(rv, &next), all.len() - i));
            break;
        }
        let mut item = o.clone();
        if repr == Repr::PartialList {
            item = represent(&item, Repr::Partial);
        } else if rt.builtin {
            if let Some(m) = item.as_object_mut() {
                m.shift_remove("kind");
                m.shift_remove("apiVersion");
            }
        }
        items.push(item);
    }
    let mut meta = serde_json::Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some((token, remaining)) = cont {
        meta.insert("continue".into(), json!(token));
        if !selective {
            meta.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    let body = match repr {
        Repr::PartialList => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": items,
        }),
        _ => json!({
            "kind": rt.list_kind(),
            "apiVersion": rt.api_version(),
            "metadata": meta,
            "items": items,
        }),
    };
    Ok(json_response(200, &body, &[]))
}

/// The key a continue token starts from: the object's etcd key relative to the listed prefix.
fn continue_key(o: &Value, all_namespaces: bool) -> String {
    let name = object::meta_str(o, "name").unwrap_or_default();
    match (all_namespaces, object::meta_str(o, "namespace")) {
        (true, Some(ns)) => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

fn encode_continue(rv: u64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    object::base64(token.to_string().as_bytes())
}

fn decode_continue(token: &str) -> Result<(String, u64), Failure> {
    let bad = || Failure::bad_request("continue key is not valid: illegal base64 data");
    let bytes = object::base64_decode(token).ok_or_else(bad)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    Ok((start.trim_end_matches('\u{0}').to_string(), rv))
}
