//! The resource types the server knows: a fixed set of built-in kinds, plus one per version of
//! every Established CustomResourceDefinition.

use serde_json::Value;

use crate::fields::{ListType, Schema};

/// One served resource (group, version, plural), as discovery describes it.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The plural, lower-case resource name used in paths (`secrets`).
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (status ignored on main-resource writes).
    pub status_subresource: bool,
    /// Built-in kinds accept strategic merge patches; custom resources answer 415.
    pub builtin: bool,
    /// For custom resources: the version's `openAPIV3Schema`.
    pub openapi_schema: Option<Value>,
    /// How lists inside the object merge under apply and strategic merge patch.
    pub fields: Schema,
    /// The `storageVersionHash` discovery shows for built-in kinds.
    pub storage_version_hash: Option<String>,
}

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `secrets` or `leases.coordination.k8s.io`: how messages name the resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// A key that names the resource independently of version, for the store.
    pub fn store_key(&self) -> String {
        if self.builtin && self.plural == "events" {
            // core/v1 and events.k8s.io/v1 Events are one resource in two views.
            return "events.k8s.io/events".into();
        }
        format!("{}/{}", self.group, self.plural)
    }

    /// Whether this is one of the two views of Events.
    pub fn is_event(&self) -> bool {
        self.builtin && self.plural == "events"
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether a write to this kind has verbs `create, delete, ...` (all served kinds do).
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.plural == "namespaces" {
            vec![
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        status_subresource: status,
        builtin: true,
        openapi_schema: None,
        fields: Schema::for_builtin_kind(kind).with_status_subresource(status),
        storage_version_hash: Some(storage_version_hash(group, version, kind)),
    }
}

/// The built-in kinds this server serves: what the controller and the sync loop write, and the
/// workloads whose pod template a rollout patches (Deployment, StatefulSet, DaemonSet: served
/// alike, with no defaulting or validation of their specs beyond ObjectMeta).
pub fn builtins() -> Vec<ResourceType> {
    let mut types = vec![
        builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
        builtin("", "v1", "Event", "events", true, &["ev"], false),
        builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
        builtin("", "v1", "Secret", "secrets", true, &[], false),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
        ),
        builtin("", "v1", "Service", "services", true, &["svc"], true),
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
        ),
        builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            true,
        ),
        builtin("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
        ),
    ];
    for t in &mut types {
        if t.kind == "Service" {
            t.categories = vec!["all".into()];
        }
        if t.group == "apps" {
            t.categories = vec!["all".into()];
        }
        if t.kind == "CustomResourceDefinition" {
            t.categories = vec!["api-extensions".into()];
        }
    }
    types
}

/// The resource types an Established CRD adds: one per served version.
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = spec["scope"].as_str() == Some("Namespaced");
    let storage: Option<String> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str().map(str::to_string));
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let schema = v["schema"]["openAPIV3Schema"].clone();
        let mut lists = Vec::new();
        let mut free = Vec::new();
        collect_list_types(&schema, String::new(), &mut lists, &mut free);
        out.push(ResourceType {
            group: group.into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: singular.clone(),
            namespaced,
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource: v["subresources"]["status"].is_object(),
            builtin: false,
            openapi_schema: (!schema.is_null()).then_some(schema),
            fields: Schema::with_lists(lists)
                .free_form(free)
                .with_status_subresource(v["subresources"]["status"].is_object()),
            storage_version_hash: storage
                .as_deref()
                .map(|v| storage_version_hash(group, v, kind)),
        });
    }
    out
}

/// Walk an OpenAPI schema for `x-kubernetes-list-type` annotations.
fn collect_list_types(
    schema: &Value,
    path: String,
    out: &mut Vec<(String, ListType)>,
    free: &mut Vec<String>,
) {
    if schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true) {
        free.push(path.clone());
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            collect_list_types(sub, format!("{path}.{name}"), out, free);
        }
    }
    if schema["type"].as_str() == Some("array") {
        match schema["x-kubernetes-list-type"].as_str() {
            Some("map") => {
                let keys = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((path.clone(), ListType::Map(keys)));
            }
            Some("set") => out.push((path.clone(), ListType::Set)),
            _ => {}
        }
        collect_list_types(&schema["items"], format!("{path}[]"), out, free);
    }
}

/// The top-level fields (besides `apiVersion`, `kind`, `metadata`) a built-in kind declares, for
/// unknown-field detection (`fieldValidation`).
pub fn builtin_top_level_fields(group: &str, kind: &str) -> &'static [&'static str] {
    match (group, kind) {
        ("", "ConfigMap") => &["immutable", "data", "binaryData"],
        ("", "Secret") => &["immutable", "data", "stringData", "type"],
        ("", "ServiceAccount") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "Event") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "Event") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        ("coordination.k8s.io", "Lease") => &["spec"],
        ("rbac.authorization.k8s.io", "Role") => &["rules"],
        ("rbac.authorization.k8s.io", "RoleBinding") => &["subjects", "roleRef"],
        ("rbac.authorization.k8s.io", "ClusterRole") => &["rules", "aggregationRule"],
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &["subjects", "roleRef"],
        _ => &["spec", "status"],
    }
}

/// Discovery's `storageVersionHash`: the first 8 bytes of SHA-256 over `group/version/kind` of
/// the storage version, in base64 (as kube-apiserver's `discovery.StorageVersionHash`).
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    crate::object::base64(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_version_hashes_match_the_recorded_ones() {
        // crd-status-subresource.json (a CRD) and discovery.json (built-in kinds).
        assert_eq!(
            storage_version_hash("example.dev", "v1", "Widget"),
            "dGliDuVrUiQ="
        );
        assert_eq!(storage_version_hash("", "v1", "Secret"), "S6u1pOWzb84=");
        assert_eq!(
            storage_version_hash("coordination.k8s.io", "v1", "Lease"),
            "gqkMMb/YqFM="
        );
    }
}
