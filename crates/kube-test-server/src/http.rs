//! The HTTP face: route a request to discovery, a collection or an object, one handler per
//! verb, apply injected faults, and write the answer as kube-apiserver does. What the request
//! asks for (target, query, representation) is read by [`crate::request`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::object;
use crate::registry::ResourceType;
use crate::request::{negotiate, parse_target, represent, Query, Repr, Target};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::Failure;
use crate::store::{FieldValidation, PatchKind, State, WriteOptions, Written};
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
    let accept = header_str(&parts.headers, header::ACCEPT).map(str::to_string);
    if parts.method == Method::GET {
        if let Some(r) = unversioned(&shared, &path, accept.as_deref()) {
            return Ok(r);
        }
    }
    let (rt, target) = resolve(&shared, &path)?;
    let body = read_body(&parts.method, body).await?;
    let call = Call {
        query: Query::parse(parts.uri.query()),
        content_type: header_str(&parts.headers, header::CONTENT_TYPE)
            .unwrap_or_default()
            .to_string(),
        accept,
        headers: parts.headers,
        rt,
        target,
        body,
    };
    match (parts.method, call.target.name.as_deref()) {
        (Method::GET, None) => get_collection(shared, &call),
        (Method::GET, Some(name)) => get_object(&shared, &call, name),
        (Method::POST, None) => create(&shared, &call),
        (Method::PUT, Some(name)) => update(&shared, &call, name),
        (Method::PATCH, Some(name)) => patch(&shared, &call, name),
        (Method::DELETE, Some(name)) => delete(&shared, &call, name),
        _ => Err(Failure::method_not_allowed()),
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What a GET answers outside the resource paths: discovery documents and health checks.
fn unversioned(shared: &Shared, path: &str, accept: Option<&str>) -> Option<Response> {
    let types = shared.state.lock().expect("state").types.clone();
    if let Some(d) = discovery::respond(path, accept, &types, &shared.address()) {
        let mut r = Response::new(Body::from(d.body));
        *r.status_mut() = StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK);
        if let Ok(v) = HeaderValue::from_str(&d.content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        return Some(r);
    }
    if path == "/healthz" || path == "/readyz" || path == "/livez" {
        return Some(Response::new(Body::from("ok")));
    }
    None
}

/// The served resource type a path names, and the path's parts; the mux's 404 for a path no
/// served type answers (unknown resource, wrong scope, a subresource not served).
fn resolve(shared: &Shared, path: &str) -> Result<(ResourceType, Target), Failure> {
    let target = parse_target(path).ok_or_else(Failure::page_not_found)?;
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
    Ok((rt, target))
}

/// The body of a write (POST, PUT, PATCH, DELETE); empty for other methods.
async fn read_body(method: &Method, body: Body) -> Result<Bytes, Failure> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Ok(Bytes::new());
    }
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Failure::status(
            413,
            "RequestEntityTooLarge",
            "the request body is too large",
            None,
        )
    })
}

/// A request to a served resource, resolved and with its body read.
struct Call {
    rt: ResourceType,
    target: Target,
    query: Query,
    headers: HeaderMap,
    accept: Option<String>,
    content_type: String,
    body: Bytes,
}

impl Call {
    fn namespace(&self) -> Option<&str> {
        self.target.namespace.as_deref()
    }

    fn subresource(&self) -> Option<&str> {
        self.target.subresource.as_deref()
    }

    /// The representation the `Accept` header asks for (406 when none is served).
    fn repr(&self) -> Result<Repr, Failure> {
        negotiate(self.accept.as_deref())
    }

    /// `dryRun`, `fieldValidation`, `fieldManager` and `force` of a write.
    fn write_options(&self) -> Result<WriteOptions, Failure> {
        let dry_run = match self.query.get("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "Invalid dry run value: {other}"
                )))
            }
        };
        let field_validation = match self.query.get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "fieldValidation must be one of Ignore, Warn, Strict; got {other}"
                )))
            }
        };
        let manager = self.query.get("fieldManager").map(str::to_string);
        Ok(WriteOptions {
            dry_run,
            manager_given: manager.is_some(),
            manager: manager.unwrap_or_else(|| default_manager(&self.headers)),
            force: self.query.flag("force"),
            field_validation,
        })
    }
}

/// A written object as the server answers it.
fn written(rt: &ResourceType, w: &Written) -> Response {
    json_response(w.code, &State::present(rt, &w.object), &w.warnings)
}

/// GET of a collection: a list, or a watch with `watch=true`.
fn get_collection(shared: Arc<Shared>, call: &Call) -> Result<Response, Failure> {
    let repr = call.repr()?;
    if call.query.flag("watch") {
        let ns = call.namespace().map(str::to_string);
        return watch::serve(shared, call.rt.clone(), ns, &call.query, repr);
    }
    list(&shared, &call.rt, call.namespace(), &call.query, repr)
}

/// GET of one object (or of its `/status`: the same object).
fn get_object(shared: &Shared, call: &Call, name: &str) -> Result<Response, Failure> {
    let repr = call.repr()?;
    let rt = &call.rt;
    if repr == Repr::PartialList {
        return Err(Failure::status(
            406,
            "NotAcceptable",
            format!(
                "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
                go_type(rt, false)
            ),
            None,
        ));
    }
    let st = shared.state.lock().expect("state");
    let obj = st
        .get(rt, call.namespace().unwrap_or_default(), name)
        .ok_or_else(|| Failure::not_found(rt, name))?;
    let obj = State::present(rt, obj);
    Ok(json_response(200, &represent(&obj, repr), &[]))
}

/// POST to a collection.
fn create(shared: &Shared, call: &Call) -> Result<Response, Failure> {
    let obj = parse_body(&call.content_type, &call.body, &call.rt)?;
    let opts = call.write_options()?;
    let w = shared
        .state
        .lock()
        .expect("state")
        .create(&call.rt, call.namespace(), obj, &opts)?;
    Ok(written(&call.rt, &w))
}

/// PUT of an object or its `/status`.
fn update(shared: &Shared, call: &Call, name: &str) -> Result<Response, Failure> {
    let obj = parse_body(&call.content_type, &call.body, &call.rt)?;
    let opts = call.write_options()?;
    let w = shared.state.lock().expect("state").update(
        &call.rt,
        call.namespace(),
        name,
        call.subresource(),
        obj,
        &opts,
    )?;
    Ok(written(&call.rt, &w))
}

/// PATCH of an object or its `/status`: the patch type from the Content-Type.
fn patch(shared: &Shared, call: &Call, name: &str) -> Result<Response, Failure> {
    let kind = patch_kind(&call.content_type)?;
    let body = if kind == PatchKind::Apply {
        parse_yaml(&call.body)?
    } else {
        serde_json::from_slice(&call.body)
            .map_err(|e| Failure::bad_request(format!("error decoding patch: {e}")))?
    };
    let opts = call.write_options()?;
    let w = shared.state.lock().expect("state").patch(
        &call.rt,
        call.namespace(),
        name,
        call.subresource(),
        kind,
        &body,
        &opts,
    )?;
    Ok(written(&call.rt, &w))
}

fn patch_kind(content_type: &str) -> Result<PatchKind, Failure> {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
        _ => Err(Failure::status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            None,
        )),
    }
}

/// DELETE of an object, with optional `DeleteOptions` in the body.
fn delete(shared: &Shared, call: &Call, name: &str) -> Result<Response, Failure> {
    let options: Value = if call.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&call.body)
            .map_err(|e| Failure::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let dry_run = call.write_options()?.dry_run
        || options["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let v = shared.state.lock().expect("state").delete(
        &call.rt,
        call.namespace(),
        name,
        &options,
        dry_run,
    )?;
    Ok(json_response(200, &v, &[]))
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
        .map(|o| State::present(rt, o))
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
