//! The in-memory store: objects by resource, one resourceVersion counter, the event history
//! watches replay from, and every write's rules (create, update, patch, apply, delete).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use crate::fields::{self, ManagedFieldsEntry};
use crate::object::{self, meta_mut, meta_str};
use crate::patch;
use crate::registry::{self, ResourceType};
use crate::status::{self, Failure};
use crate::validate::{self, Op};

/// One change, as watches deliver it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    /// [`ResourceType::store_key`] of the changed object.
    pub key: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Arc<Value>,
    /// The object before a modification (selectors decide ADDED/DELETED transitions on it).
    pub old: Option<Arc<Value>>,
}

/// What a write was asked to do besides its body.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// `fieldManager`, or the default derived from the User-Agent.
    pub manager: String,
    pub manager_given: bool,
    pub force: bool,
    pub field_validation: FieldValidation,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// The kinds of patch kube-apiserver accepts, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// A successful write: status code, object, warnings for the `Warning` header.
#[derive(Debug)]
pub struct Written {
    pub code: u16,
    pub object: Value,
    pub warnings: Vec<String>,
}

pub struct State {
    pub rv: u64,
    pub types: Vec<ResourceType>,
    objects: HashMap<String, BTreeMap<(String, String), Value>>,
    pub history: VecDeque<Arc<Event>>,
    /// Watches from a resourceVersion below this are 410 Expired.
    pub compacted: u64,
    pub history_limit: usize,
    /// Newest resourceVersion per resource (for bookmarks).
    pub last_rv: HashMap<String, u64>,
    pub events: broadcast::Sender<Arc<Event>>,
}

/// Where an object lives: resource key, namespace ("" for cluster-scoped), name.
type Key = (String, String);

impl State {
    pub fn new(history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(16_384);
        let mut s = State {
            rv: 100,
            types: registry::builtins(),
            objects: HashMap::new(),
            history: VecDeque::new(),
            compacted: 0,
            history_limit,
            last_rv: HashMap::new(),
            events,
        };
        // What every cluster has.
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let rt = s
                .find_type("", "v1", "namespaces")
                .cloned()
                .expect("namespaces");
            let opts = WriteOptions {
                manager: "kube-apiserver".into(),
                ..WriteOptions::default()
            };
            let _ = s.create(
                &rt,
                None,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                &opts,
            );
        }
        s
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    fn bucket(&self, rt: &ResourceType) -> Option<&BTreeMap<Key, Value>> {
        self.objects.get(&rt.store_key())
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.bucket(rt)?.get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of one resource, in one namespace or all, in key order (as etcd lists).
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<&Value> {
        let Some(b) = self.bucket(rt) else {
            return Vec::new();
        };
        b.iter()
            .filter(|((n, _), _)| ns.is_none_or(|want| n == want))
            .map(|(_, v)| v)
            .collect()
    }

    /// The object as stored for another version of the same resource (only the apiVersion
    /// differs here: served versions share one schema in this server).
    pub fn present(rt: &ResourceType, obj: &Value) -> Value {
        if rt.is_event() {
            return crate::convert::event_as(obj, &rt.api_version());
        }
        let mut v = obj.clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
        }
        v
    }

    fn record(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        kind: &'static str,
        obj: &Value,
        old: Option<&Value>,
    ) {
        let ev = Arc::new(Event {
            rv: self.rv,
            key: rt.store_key(),
            namespace: ns.to_string(),
            kind,
            object: Arc::new(obj.clone()),
            old: old.map(|o| Arc::new(o.clone())),
        });
        self.last_rv.insert(rt.store_key(), self.rv);
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.rv;
            }
        }
        let _ = self.events.send(ev);
    }

    /// Forget every event so far: watches from any earlier resourceVersion get 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn namespace_check(&self, rt: &ResourceType, ns: &str) -> Result<(), Failure> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns_type = self.find_type("", "v1", "namespaces").expect("namespaces");
        match self.get(ns_type, "", ns) {
            None => Err(Failure::namespace_not_found(ns)),
            Some(n) if n["metadata"].get("deletionTimestamp").is_some() => Err(Failure::status(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified_plural(),
                    "",
                ),
                Some(json!({"name": "", "kind": rt.plural})),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Body checks every write makes before anything else: kind, apiVersion, namespace.
    fn check_body(rt: &ResourceType, ns: &str, obj: &Value) -> Result<(), Failure> {
        if !obj.is_object() {
            return Err(Failure::bad_request("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
            if kind != rt.kind {
                return Err(Failure::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version ({})",
                    obj.get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    rt.api_version()
                )));
            }
        }
        if rt.namespaced {
            validate::check_namespace(ns, obj)?;
        }
        Ok(())
    }

    /// Defaulting (before field ownership is computed): what decoding does on the real server.
    fn default_object(rt: &ResourceType, obj: &mut Value) {
        let o = obj.as_object_mut().expect("object");
        o.insert("kind".into(), json!(rt.kind));
        o.insert("apiVersion".into(), json!(rt.api_version()));
        match (rt.group.as_str(), rt.kind.as_str()) {
            ("", "Secret") => {
                if let Some(Value::Object(sd)) = o.shift_remove("stringData") {
                    let data = o.entry("data").or_insert_with(|| json!({}));
                    if !data.is_object() {
                        *data = json!({});
                    }
                    let data = data.as_object_mut().expect("data");
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or_default();
                        data.insert(k, json!(object::base64(s.as_bytes())));
                    }
                }
                if o.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    o.insert("type".into(), json!("Opaque"));
                }
            }
            ("", "Namespace") => {
                let name = o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let meta = meta_mut(obj);
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let spec = &mut o["spec"];
                if spec.is_object() {
                    let kind = spec["names"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if spec["names"].is_object() && spec["names"].get("listKind").is_none() {
                        spec["names"]["listKind"] = json!(format!("{kind}List"));
                    }
                    if spec.get("conversion").is_none() {
                        spec["conversion"] = json!({"strategy": "None"});
                    }
                }
            }
            _ => {}
        }
    }

    /// Strategy on create (after field ownership): server-owned fields.
    fn prepare_create(rt: &ResourceType, obj: &mut Value) {
        if rt.status_subresource && rt.kind != "Namespace" {
            if let Some(o) = obj.as_object_mut() {
                o.shift_remove("status");
            }
        }
        match (rt.group.as_str(), rt.kind.as_str()) {
            ("", "Namespace") => {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let storage: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"].as_bool() == Some(true))
                    .map(|v| v["name"].clone())
                    .collect();
                obj["status"] = json!({
                    "conditions": null,
                    "acceptedNames": {"plural": "", "kind": ""},
                    "storedVersions": storage,
                });
            }
            _ => {}
        }
    }

    fn has_generation(rt: &ResourceType) -> bool {
        !rt.builtin
            || matches!(
                rt.kind.as_str(),
                "CustomResourceDefinition" | "Deployment" | "StatefulSet" | "DaemonSet"
            )
    }

    fn output(rt: &ResourceType, mut obj: Value) -> Value {
        // Go omits empty maps and lists marked omitempty: ObjectMeta's, and Secret/ConfigMap data.
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in ["labels", "annotations", "ownerReferences", "finalizers"] {
                if meta.get(k).is_some_and(is_empty_collection) {
                    meta.shift_remove(k);
                }
            }
        }
        if rt.builtin && matches!(rt.kind.as_str(), "Secret" | "ConfigMap") {
            if let Some(o) = obj.as_object_mut() {
                for k in ["data", "stringData", "binaryData"] {
                    if o.get(k).is_some_and(is_empty_collection) {
                        o.shift_remove(k);
                    }
                }
            }
        }
        if rt.builtin {
            object::canonical_builtin(obj)
        } else {
            object::sorted(obj)
        }
    }

    fn schema_checks(
        rt: &ResourceType,
        obj: &mut Value,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> Result<(), Failure> {
        if rt.builtin {
            let unknown = validate::unknown_fields(rt, obj);
            if !unknown.is_empty() {
                match opts.field_validation {
                    FieldValidation::Strict => {
                        return Err(validate::strict_rejection(&unknown).into())
                    }
                    FieldValidation::Warn => {
                        warnings.extend(validate::unknown_field_warnings(&unknown))
                    }
                    FieldValidation::Ignore => {}
                }
                // Decoding into the typed object drops what the type does not declare.
                for path in unknown.iter() {
                    remove_path(obj, path);
                }
            }
        } else {
            validate::prune(rt, obj);
        }
        Ok(())
    }

    /// POST: a new object.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, Failure> {
        let ns = ns.unwrap_or_default();
        Self::check_body(rt, ns, &obj)?;
        validate::check_decode(rt, &obj, Op::Create, None)?;
        let mut warnings = Vec::new();
        Self::schema_checks(rt, &mut obj, opts, &mut warnings)?;
        {
            let meta = meta_mut(&mut obj);
            if meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
            {
                if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                    let name = object::generate_name(prefix);
                    meta.insert("name".into(), json!(name));
                }
            }
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.shift_remove("namespace");
            }
            for k in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
                "managedFields",
                "selfLink",
            ] {
                meta.shift_remove(k);
            }
        }
        Self::default_object(rt, &mut obj);
        validate::validate(rt, &obj, None, Op::Create).map_err(Failure::from)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        self.namespace_check(rt, ns)?;
        if self.get(rt, ns, &name).is_some() {
            return Err(Failure::already_exists(rt, &name));
        }
        let managed = fields::update(
            None,
            &obj,
            Vec::new(),
            &opts.manager,
            None,
            &rt.api_version(),
            &object::now_time(),
            &rt.fields,
        );
        Self::prepare_create(rt, &mut obj);
        self.finish_create(rt, ns, obj, managed, opts, warnings)
    }

    fn finish_create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        managed: Vec<ManagedFieldsEntry>,
        opts: &WriteOptions,
        warnings: Vec<String>,
    ) -> Result<Written, Failure> {
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        {
            let gen = Self::has_generation(rt);
            let meta = meta_mut(&mut obj);
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(object::now_time()));
            if gen {
                meta.insert("generation".into(), json!(1));
            }
            if managed.is_empty() {
                meta.shift_remove("managedFields");
            } else {
                meta.insert("managedFields".into(), entries_to_json(rt, &managed));
            }
        }
        if opts.dry_run {
            return Ok(Written {
                code: 201,
                object: Self::output(rt, obj),
                warnings,
            });
        }
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let obj = Self::output(rt, obj);
        self.objects
            .entry(rt.store_key())
            .or_default()
            .insert((ns.to_string(), name.clone()), obj.clone());
        self.record(rt, ns, "ADDED", &obj, None);
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            self.establish(rt, &name);
        }
        Ok(Written {
            code: 201,
            object: obj,
            warnings,
        })
    }

    /// What the apiextensions controllers do right after a CRD is stored: accept its names,
    /// mark it Established, and start serving its resources.
    fn establish(&mut self, crd_type: &ResourceType, name: &str) {
        let Some(mut crd) = self.get(crd_type, "", name).cloned() else {
            return;
        };
        let now = object::now_time();
        let mut names = crd["spec"]["names"].clone();
        if let Some(n) = names.as_object_mut() {
            n.shift_remove("shortNames");
            n.shift_remove("categories");
            let (p, s, k, l) = (
                n.get("plural").cloned(),
                n.get("singular").cloned(),
                n.get("kind").cloned(),
                n.get("listKind").cloned(),
            );
            let mut ordered = Map::new();
            for (key, v) in [("plural", p), ("singular", s), ("kind", k), ("listKind", l)] {
                if let Some(v) = v {
                    ordered.insert(key.into(), v);
                }
            }
            if let Some(sn) = crd["spec"]["names"].get("shortNames") {
                ordered.insert("shortNames".into(), sn.clone());
            }
            if let Some(c) = crd["spec"]["names"].get("categories") {
                ordered.insert("categories".into(), c.clone());
            }
            names = Value::Object(ordered);
        }
        let old = crd.clone();
        crd["status"]["conditions"] = json!([
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ]);
        crd["status"]["acceptedNames"] = names;
        let managed = entries_from_json(&old["metadata"]["managedFields"]);
        let managed = fields::update(
            Some(&old),
            &crd,
            managed,
            "kube-apiserver",
            Some("status"),
            "apiextensions.k8s.io/v1",
            &now,
            &crd_type.fields,
        );
        meta_mut(&mut crd).insert("managedFields".into(), entries_to_json(crd_type, &managed));
        self.rv += 1;
        meta_mut(&mut crd).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let crd = Self::output(crd_type, crd);
        self.objects
            .entry(crd_type.store_key())
            .or_default()
            .insert((String::new(), name.to_string()), crd.clone());
        self.record(crd_type, "", "MODIFIED", &crd, Some(&old));
        self.serve_crd(&crd);
    }

    fn serve_crd(&mut self, crd: &Value) {
        let new_types = registry::from_crd(crd);
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.types
            .retain(|t| t.builtin || !(t.group == group && t.plural == plural));
        self.types.extend(new_types);
    }

    /// Which part of the object a write may change: everything but status on the main
    /// resource of a kind with a status subresource; only status on `/status`.
    fn restrict(rt: &ResourceType, subresource: Option<&str>, old: &Value, new: &mut Value) {
        match subresource {
            Some("status") => {
                let status = new.get("status").cloned();
                let mut out = old.clone();
                match status {
                    Some(s) => out["status"] = s,
                    None => {
                        if let Some(o) = out.as_object_mut() {
                            o.shift_remove("status");
                        }
                    }
                }
                // Metadata changes other than through the main resource are dropped.
                *new = out;
            }
            _ => {
                if rt.status_subresource {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(o) = new.as_object_mut() {
                                o.shift_remove("status");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The common tail of update, patch and apply: restrictions, validation, generation,
    /// resourceVersion, no-op detection, storage and the watch event.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: &Value,
        mut new: Value,
        managed: Vec<ManagedFieldsEntry>,
        subresource: Option<&str>,
        op: Op,
        opts: &WriteOptions,
        warnings: Vec<String>,
    ) -> Result<Written, Failure> {
        if let Some(uid) = meta_str(&new, "uid").filter(|u| !u.is_empty()) {
            if Some(uid) != meta_str(old, "uid") {
                return Err(validate::uid_changed(rt, name, uid).into());
            }
        }
        {
            let meta = meta_mut(&mut new);
            // Server-owned metadata comes from the stored object.
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
                "name",
                "namespace",
            ] {
                match old["metadata"].get(k) {
                    Some(v) => {
                        meta.insert(k.into(), v.clone());
                    }
                    None => {
                        meta.shift_remove(k);
                    }
                }
            }
            if managed.is_empty() {
                meta.shift_remove("managedFields");
            } else {
                meta.insert("managedFields".into(), entries_to_json(rt, &managed));
            }
        }
        match subresource {
            Some("status") => validate::validate_status(rt, &new, Some(old), op)?,
            _ => validate::validate(rt, &new, Some(old), op)?,
        }
        if Self::has_generation(rt) && object::spec_part(&new) != object::spec_part(old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        meta_mut(&mut new).insert(
            "resourceVersion".into(),
            old["metadata"]["resourceVersion"].clone(),
        );
        let mut new = Self::output(rt, new);
        if object::without_volatile(&new) == object::without_volatile(old) {
            // Nothing changed: no write, and the stored object (with its times) answers.
            return Ok(Written {
                code: 200,
                object: old.clone(),
                warnings,
            });
        }
        let _ = subresource;
        if opts.dry_run {
            return Ok(Written {
                code: 200,
                object: new,
                warnings,
            });
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let new = Self::output(rt, new);
        // An object being deleted goes once its last finalizer is removed.
        let deleting = new["metadata"].get("deletionTimestamp").is_some()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
            && rt.kind != "Namespace";
        let bucket = self.objects.entry(rt.store_key()).or_default();
        if deleting {
            bucket.remove(&(ns.to_string(), name.to_string()));
            self.record(rt, ns, "DELETED", &new, Some(old));
        } else {
            bucket.insert((ns.to_string(), name.to_string()), new.clone());
            self.record(rt, ns, "MODIFIED", &new, Some(old));
        }
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            self.serve_crd(&new);
        }
        Ok(Written {
            code: 200,
            object: new,
            warnings,
        })
    }

    fn stored(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, Failure> {
        self.get(rt, ns, name)
            .cloned()
            .ok_or_else(|| Failure::not_found(rt, name))
    }

    /// PUT: replace, with optimistic concurrency on `metadata.resourceVersion`.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, Failure> {
        let ns = ns.unwrap_or_default();
        Self::check_body(rt, ns, &obj)?;
        if let Some(body_name) = meta_str(&obj, "name") {
            if body_name != name {
                return Err(Failure::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
        }
        validate::check_decode(rt, &obj, Op::Update, None)?;
        let mut warnings = Vec::new();
        Self::schema_checks(rt, &mut obj, opts, &mut warnings)?;
        let old = self.stored(rt, ns, name)?;
        if let Some(rv) = meta_str(&obj, "resourceVersion") {
            if !rv.is_empty() && Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(Failure::conflict(rt, name));
            }
        }
        meta_mut(&mut obj).insert("name".into(), json!(name));
        self.update_tail(
            rt,
            ns,
            name,
            subresource,
            &old,
            obj,
            Op::Update,
            opts,
            warnings,
        )
    }

    /// PATCH: merge, JSON, strategic merge, or server-side apply.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        kind: PatchKind,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, Failure> {
        let ns = ns.unwrap_or_default();
        if kind == PatchKind::Apply {
            return self.apply(rt, ns, name, subresource, body, opts);
        }
        if kind == PatchKind::Strategic && !rt.builtin {
            return Err(Failure::status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                None,
            ));
        }
        let old = self.stored(rt, ns, name)?;
        let mut new = old.clone();
        if let Some(o) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            o.shift_remove("managedFields");
        }
        let op = match kind {
            PatchKind::Merge => {
                patch::merge_patch(&mut new, body);
                Op::MergePatch
            }
            PatchKind::Strategic => {
                patch::strategic_merge_patch(&mut new, body, &rt.fields);
                Op::StrategicPatch
            }
            PatchKind::Json => {
                new = patch::json_patch(&new, body).map_err(|msg| {
                    if msg == patch::JSON_PATCH_REJECTED {
                        Failure::status(422, "Invalid", msg, Some(json!({})))
                    } else {
                        Failure::bad_request(msg)
                    }
                })?;
                Op::JsonPatch
            }
            PatchKind::Apply => unreachable!("handled above"),
        };
        if !new.is_object() {
            return Err(Failure::bad_request("the patch did not produce an object"));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion") {
            if Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(Failure::conflict(rt, name));
            }
        }
        let strategic = (kind == PatchKind::Strategic).then_some(body);
        validate::check_decode(rt, &new, op, strategic)?;
        let mut warnings = Vec::new();
        Self::schema_checks(rt, &mut new, opts, &mut warnings)?;
        self.update_tail(rt, ns, name, subresource, &old, new, op, opts, warnings)
    }

    /// What update and the non-apply patches share once the new object is known: defaulting,
    /// the subresource's restriction, field ownership for the Update operation, and the write.
    #[allow(clippy::too_many_arguments)]
    fn update_tail(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        old: &Value,
        mut new: Value,
        op: Op,
        opts: &WriteOptions,
        warnings: Vec<String>,
    ) -> Result<Written, Failure> {
        Self::default_object(rt, &mut new);
        Self::restrict(rt, subresource, old, &mut new);
        let managed = entries_from_json(&old["metadata"]["managedFields"]);
        let managed = fields::update(
            Some(old),
            &new,
            managed,
            &opts.manager,
            subresource,
            &rt.api_version(),
            &object::now_time(),
            &rt.fields,
        );
        self.finish_update(
            rt,
            ns,
            name,
            old,
            new,
            managed,
            subresource,
            op,
            opts,
            warnings,
        )
    }

    fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, Failure> {
        if !opts.manager_given {
            return Err(Failure::status(
                400,
                "BadRequest",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                None,
            ));
        }
        Self::check_body(rt, ns, body)?;
        let mut config = body.clone();
        if config.get("kind").is_none() || config.get("apiVersion").is_none() {
            return Err(Failure::bad_request("invalid object type: /, Kind="));
        }
        if let Some(body_name) = meta_str(&config, "name") {
            if body_name != name {
                return Err(Failure::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
        }
        validate::check_decode(rt, &config, Op::Apply, None)?;
        let mut warnings = Vec::new();
        Self::schema_checks(rt, &mut config, opts, &mut warnings)?;
        // The part of the configuration this endpoint may set.
        if let Some(o) = config.as_object_mut() {
            match subresource {
                Some("status") => {
                    let keep: Vec<String> = o
                        .keys()
                        .filter(|k| {
                            matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                        })
                        .cloned()
                        .collect();
                    o.retain(|k, _| keep.contains(k));
                }
                _ if rt.status_subresource => {
                    o.shift_remove("status");
                }
                _ => {}
            }
        }
        let live = self.get(rt, ns, name).cloned();
        if let (Some(l), Some(rv)) = (&live, meta_str(&config, "resourceVersion")) {
            if !rv.is_empty() && Some(rv) != meta_str(l, "resourceVersion") {
                return Err(Failure::conflict(rt, name));
            }
        }
        if let (Some(l), Some(uid)) = (&live, meta_str(&config, "uid")) {
            if !uid.is_empty() && Some(uid) != meta_str(l, "uid") {
                return Err(validate::uid_changed(rt, name, uid).into());
            }
        }
        if live.is_none() {
            if subresource.is_some() {
                return Err(Failure::not_found(rt, name));
            }
            self.namespace_check(rt, ns)?;
        }
        let managed = live
            .as_ref()
            .map(|l| entries_from_json(&l["metadata"]["managedFields"]))
            .unwrap_or_default();
        let mut live_plain = live.clone();
        if let Some(l) = live_plain
            .as_mut()
            .and_then(|l| l.get_mut("metadata"))
            .and_then(Value::as_object_mut)
        {
            l.shift_remove("managedFields");
        }
        let request = fields::ApplyRequest {
            live: live_plain.as_ref(),
            managed: &managed,
            config: &config,
            manager: &opts.manager,
            force: opts.force,
            subresource,
            api_version: &rt.api_version(),
            now: &object::now_time(),
            schema: &rt.fields,
        };
        let outcome = match fields::apply(&request) {
            Ok(o) => o,
            Err(conflicts) => {
                let body = fields::conflict_status(&conflicts);
                return Err(Failure {
                    code: 409,
                    body,
                    text: None,
                    retry_after: None,
                });
            }
        };
        let mut new = outcome.object;
        {
            let meta = meta_mut(&mut new);
            meta.insert("name".into(), json!(name));
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
            meta.shift_remove("resourceVersion");
        }
        Self::default_object(rt, &mut new);
        match live {
            None => {
                validate::validate(rt, &new, None, Op::Apply).map_err(Failure::from)?;
                Self::prepare_create(rt, &mut new);
                self.finish_create(rt, ns, new, outcome.managed, opts, warnings)
            }
            Some(old) => {
                Self::restrict(rt, subresource, &old, &mut new);
                self.finish_update(
                    rt,
                    ns,
                    name,
                    &old,
                    new,
                    outcome.managed,
                    subresource,
                    Op::Apply,
                    opts,
                    warnings,
                )
            }
        }
    }

    /// DELETE: a Status for most kinds; objects with finalizers (and Namespaces) stay, marked.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value, Failure> {
        let ns = ns.unwrap_or_default();
        let old = self.stored(rt, ns, name)?;
        // rest.BeforeDelete: the uid first, then the resourceVersion; a Conflict on the group
        // and *kind* (not the resource), as kube-apiserver words it.
        let conflict = |what: &str, wanted: &str, field: &str, tail: &str| {
            let qualified = if rt.group.is_empty() {
                rt.kind.clone()
            } else {
                format!("{}.{}", rt.kind, rt.group)
            };
            let mut details = serde_json::Map::new();
            details.insert("name".into(), json!(name));
            if !rt.group.is_empty() {
                details.insert("group".into(), json!(rt.group));
            }
            details.insert("kind".into(), json!(rt.kind));
            Failure::status(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {qualified} \"{name}\": the {what} in the precondition ({wanted}) does not match the {what} in record ({}). {tail}",
                    meta_str(&old, field).unwrap_or_default()
                ),
                Some(Value::Object(details)),
            )
        };
        if let Some(uid) = options["preconditions"]["uid"].as_str() {
            if Some(uid) != meta_str(&old, "uid") {
                return Err(conflict(
                    "UID",
                    uid,
                    "uid",
                    "The object might have been deleted and then recreated",
                ));
            }
        }
        if let Some(rv) = options["preconditions"]["resourceVersion"].as_str() {
            if Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(conflict(
                    "ResourceVersion",
                    rv,
                    "resourceVersion",
                    "The object might have been modified",
                ));
            }
        }
        let finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
        if finalizers || is_namespace {
            if old["metadata"].get("deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), json!(object::now_time()));
            if finalizers {
                meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if is_namespace {
                new["status"] = json!({"phase": "Terminating"});
            }
            if dry_run {
                return Ok(Self::output(rt, new));
            }
            self.rv += 1;
            meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
            let new = Self::output(rt, new);
            self.objects
                .entry(rt.store_key())
                .or_default()
                .insert((ns.to_string(), name.to_string()), new.clone());
            self.record(rt, ns, "MODIFIED", &new, Some(&old));
            return Ok(new);
        }
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        if dry_run {
            return Ok(status::deleted(&rt.plural, &rt.group, name, &uid));
        }
        self.rv += 1;
        let mut gone = old.clone();
        meta_mut(&mut gone).insert("resourceVersion".into(), json!(self.rv.to_string()));
        if let Some(b) = self.objects.get_mut(&rt.store_key()) {
            b.remove(&(ns.to_string(), name.to_string()));
        }
        self.record(rt, ns, "DELETED", &gone, Some(&old));
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            let group = old["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let plural = old["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.types
                .retain(|t| t.builtin || !(t.group == group && t.plural == plural));
            self.objects.remove(&format!("{group}/{plural}"));
        }
        Ok(status::deleted(&rt.plural, &rt.group, name, &uid))
    }
}

impl From<validate::Rejection> for Failure {
    fn from(r: validate::Rejection) -> Self {
        Failure {
            code: r.status,
            body: r.body,
            text: None,
            retry_after: None,
        }
    }
}

/// The stored `metadata.managedFields` as entries (a malformed list counts as none).
fn entries_from_json(v: &Value) -> Vec<ManagedFieldsEntry> {
    fields::parse_managed_fields(Some(v)).unwrap_or_default()
}

/// Entries as `metadata.managedFields`: struct key order for built-in kinds, sorted keys for
/// custom resources (unstructured objects).
fn entries_to_json(rt: &ResourceType, entries: &[ManagedFieldsEntry]) -> Value {
    fields::managed_fields_to_json(entries, !rt.builtin)
}

fn is_empty_collection(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty()) || matches!(v, Value::Array(a) if a.is_empty())
}

/// Remove a dotted field path (`bogus`, `metadata.foo`, `spec.x`) from an object.
fn remove_path(obj: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return;
    };
    let mut cur = obj;
    for p in parts {
        match cur.get_mut(p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.shift_remove(last);
    }
}
