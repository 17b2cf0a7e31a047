//! What a request asks for, read from its path, query string and `Accept` header: the
//! [`Target`] (group, version, namespace, resource, name, subresource), the [`Query`], and the
//! representation ([`Repr`]) objects are answered in. Shared by the HTTP face and watches.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::status::Failure;

/// How long a watch without `timeoutSeconds` stays open.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// What the request's `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    Full,
    /// `as=PartialObjectMetadata;g=meta.k8s.io;v=v1`
    Partial,
    /// `as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`
    PartialList,
}

/// The representation the `Accept` header asks for; 406 when nothing listed is served.
pub fn negotiate(accept: Option<&str>) -> Result<Repr, Failure> {
    let Some(accept) = accept else {
        return Ok(Repr::Full);
    };
    let mut saw_any = false;
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default();
        if !matches!(mime, "application/json" | "*/*" | "application/*" | "") {
            continue;
        }
        saw_any = true;
        let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        match (params.get("as"), params.get("g")) {
            (None, _) => return Ok(Repr::Full),
            (Some(&"PartialObjectMetadata"), Some(&"meta.k8s.io")) => return Ok(Repr::Partial),
            (Some(&"PartialObjectMetadataList"), Some(&"meta.k8s.io")) => {
                return Ok(Repr::PartialList)
            }
            // Table and other conversions are not served: try the next alternative.
            _ => continue,
        }
    }
    let _ = saw_any;
    Err(Failure::status(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        None,
    ))
}

/// The parsed query string (form-encoded).
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
        }
        Query(m)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// A request path split into the API's parts.
#[derive(Debug)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// `None` when the path is not an API path (the mux's 404).
pub fn parse_target(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let rest: Vec<String> = rest.iter().map(|s| decode(s)).collect();
    let t = |namespace: Option<String>,
             plural: &str,
             name: Option<&String>,
             sub: Option<&String>| Target {
        group: group.clone(),
        version: version.clone(),
        namespace,
        plural: plural.to_string(),
        name: name.cloned(),
        subresource: sub.cloned(),
    };
    Some(match rest.as_slice() {
        [] => return None,
        // /api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]]
        [ns_kw, ns, plural, tail @ ..]
            if ns_kw == "namespaces"
                && !(group.is_empty()
                    && matches!(plural.as_str(), "status" | "finalize")
                    && tail.is_empty()) =>
        {
            if tail.len() > 2 {
                return None;
            }
            t(Some(ns.clone()), plural, tail.first(), tail.get(1))
        }
        [plural] => t(None, plural, None, None),
        [plural, name] => t(None, plural, Some(name), None),
        [plural, name, sub] => t(None, plural, Some(name), Some(sub)),
        _ => return None,
    })
}

/// An object as the Accept header asked for it.
pub fn represent(obj: &Value, repr: Repr) -> Value {
    match repr {
        Repr::Full => obj.clone(),
        Repr::Partial | Repr::PartialList => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}
