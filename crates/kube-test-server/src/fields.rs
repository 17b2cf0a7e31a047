//! `managedFields` bookkeeping and server-side apply, as kube-apiserver v1.28 does them
//! (structured-merge-diff v4 semantics), on plain `serde_json::Value` objects.
//!
//! Pure functions only: the caller reads and stores objects, checks resourceVersions, validates,
//! and converts `stringData` into `data` after an apply.
//!
//! Behaviours taken from the recorded answers of a real server (see the tests):
//! * an Apply entry owns the leaves of the applied configuration, list items (with a `"."`
//!   marker when they have owned sub-fields) and, under free-form (preserve-unknown-fields)
//!   parts of a schema, every nested map; `apiVersion`, `kind`, `metadata.name`,
//!   `metadata.namespace` and the server-set metadata are never owned;
//! * an Update entry owns what the write added or changed, including the maps and list items
//!   it created (`"."` markers);
//! * a field changed to a different value takes it from its other owners (Update) or is a
//!   conflict (Apply without force); an equal value is shared;
//! * entries are ordered Apply before Update, then by time (an entry without time first), then
//!   by manager, apiVersion and subresource; an Apply that does not change the object leaves
//!   its manager's time alone (a new entry then has no `time` at all).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// How the items of a JSON array are identified for merging and ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// The list is one value: replaced as a whole, owned as a whole (the default).
    Atomic,
    /// A list of distinct scalars, each item owned by value (`v:` in fieldsV1).
    Set,
    /// A list of objects identified by these key fields (`k:` in fieldsV1).
    Map(Vec<String>),
}

/// What the field manager needs to know about an object's schema.
///
/// Paths are written without indices, from the object's root: `.metadata.ownerReferences`,
/// `.status.conditions`; the items of a list are addressed with a trailing `[]`
/// (`.metadata.ownerReferences[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    lists: Vec<(String, ListType)>,
    atomic_maps: Vec<String>,
    free_form: Vec<String>,
    present_when_empty: Vec<String>,
    status_subresource: bool,
}

impl Schema {
    /// A schema where every list is atomic and every map granular.
    pub fn empty() -> Self {
        Schema::default()
    }

    /// The lists and maps of `ObjectMeta` every built-in kind shares: `metadata.ownerReferences`
    /// is a map keyed by `uid` whose items are atomic, `metadata.finalizers` a set.
    pub fn for_builtin() -> Self {
        Schema {
            lists: vec![
                (
                    ".metadata.ownerReferences".to_string(),
                    ListType::Map(vec!["uid".to_string()]),
                ),
                (".metadata.finalizers".to_string(), ListType::Set),
            ],
            atomic_maps: vec![".metadata.ownerReferences[]".to_string()],
            ..Schema::default()
        }
    }

    /// [`Schema::for_builtin`] plus what is known of one built-in kind: the struct fields a new
    /// empty object of that kind already has (so that an Update creating the object does not
    /// mark them with `"."`), its lists with keys, and whether it has a status subresource.
    pub fn for_builtin_kind(kind: &str) -> Self {
        let mut schema = Schema::for_builtin();
        let (present, status): (&[&str], bool) = match kind {
            "Lease" => (&["spec"], false),
            "Namespace" => (&["spec", "status"], true),
            "Pod"
            | "Service"
            | "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "Job"
            | "PersistentVolumeClaim" => (&["spec", "status"], true),
            "CustomResourceDefinition" => (&["spec", "status"], true),
            _ => (&[], false),
        };
        schema.present_when_empty = present.iter().map(|s| format!(".{s}")).collect();
        schema.status_subresource = status;
        if kind == "CustomResourceDefinition" {
            schema.lists.push((
                ".status.conditions".to_string(),
                ListType::Map(vec!["type".to_string()]),
            ));
        }
        if matches!(kind, "Namespace") {
            schema.lists.push((
                ".status.conditions".to_string(),
                ListType::Map(vec!["type".to_string()]),
            ));
        }
        schema
    }

    /// A schema for a custom resource: [`Schema::for_builtin`]'s metadata plus these lists
    /// (from `x-kubernetes-list-type` and `x-kubernetes-list-map-keys`).
    pub fn with_lists(lists: Vec<(String, ListType)>) -> Self {
        let mut schema = Schema::for_builtin();
        schema.lists.extend(lists);
        schema
    }

    /// Declares maps that are owned and replaced as a whole (`x-kubernetes-map-type: atomic`).
    pub fn atomic_maps(mut self, paths: Vec<String>) -> Self {
        self.atomic_maps.extend(paths);
        self
    }

    /// Declares parts of the object whose keys are not declared fields
    /// (`x-kubernetes-preserve-unknown-fields`): below these paths every nested map an apply
    /// sets is itself owned (`"."`) and lists are atomic.
    pub fn free_form(mut self, paths: Vec<String>) -> Self {
        self.free_form.extend(paths);
        self
    }

    /// Declares that the resource has a status subresource: an apply to the main resource
    /// ignores `status`, an apply to `/status` ignores everything but `status`.
    pub fn with_status_subresource(mut self, yes: bool) -> Self {
        self.status_subresource = yes;
        self
    }

    /// The list type of the list at `path` (crate-internal, for the strategic merge patch).
    pub(crate) fn list_type_of(&self, path: &str) -> ListType {
        self.list_type(path)
    }

    fn list_type(&self, path: &str) -> ListType {
        if self.in_free_form(path) {
            return ListType::Atomic;
        }
        self.lists
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .unwrap_or(ListType::Atomic)
    }

    fn is_atomic_map(&self, path: &str) -> bool {
        self.atomic_maps.iter().any(|p| p == path)
    }

    /// True when `path` lies strictly below a free-form path (its keys are undeclared).
    fn in_free_form(&self, path: &str) -> bool {
        self.free_form.iter().any(|p| {
            path.len() > p.len()
                && path.starts_with(p.as_str())
                && matches!(path.as_bytes()[p.len()], b'.' | b'[')
        })
    }

    /// True when the children of the map at `path` are not declared fields.
    fn keys_undeclared(&self, path: &str) -> bool {
        self.free_form.iter().any(|p| p == path) || self.in_free_form(path)
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and field sets
// ---------------------------------------------------------------------------------------------

/// One step of a field path, ordered as structured-merge-diff orders them.
#[derive(Clone, Debug, PartialEq)]
pub enum PathElement {
    /// A field of a map (`f:name`, rendered `.name`).
    Field(String),
    /// A list-map item by its key fields, sorted by name (`k:{"type":"Ready"}`).
    Key(Vec<(String, Value)>),
    /// A set item by value (`v:"x"`).
    Value(Value),
    /// A list item by index (`i:0`), only in atomic contexts.
    Index(usize),
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        fn rank(pe: &PathElement) -> u8 {
            match pe {
                PathElement::Field(_) => 0,
                PathElement::Key(_) => 1,
                PathElement::Value(_) => 2,
                PathElement::Index(_) => 3,
            }
        }
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl fmt::Display for PathElement {
    /// Renders the element as the server does in conflict messages:
    /// `.name`, `[type="Ready"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={}", go_json(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", go_json(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PathElement {
    /// The key of this element in the `fieldsV1` encoding.
    fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut m = Map::new();
                for (n, v) in fields {
                    m.insert(n.clone(), v.clone());
                }
                format!("k:{}", go_json(&Value::Object(m)))
            }
            PathElement::Value(v) => format!("v:{}", go_json(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(key: &str) -> Result<PathElement, String> {
        let (prefix, rest) = key
            .split_once(':')
            .ok_or_else(|| format!("invalid fieldsV1 key {key:?}"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => {
                    let mut fields: Vec<(String, Value)> = m.into_iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(fields))
                }
                _ => Err(format!("invalid fieldsV1 key {key:?}")),
            },
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| format!("invalid fieldsV1 key {key:?}: {e}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid fieldsV1 key {key:?}: {e}")),
            _ => Err(format!("invalid fieldsV1 key {key:?}")),
        }
    }
}

/// A field path from the object's root.
pub type Path = Vec<PathElement>;

/// Renders a path as the server does in conflict causes: `.status.conditions[type="Ready"].status`.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(|pe| pe.to_string()).collect()
}

/// A set of field paths, stored as structured-merge-diff does: at each node, the elements that
/// are themselves members, and the child sets below elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path (a no-op for the empty path).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// True when the path is in the set.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// True when some path of the set lies strictly below `path`.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        match path {
            [] => !self.is_empty(),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|c| c.has_descendant(rest)),
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out.prune_empty();
        out
    }

    /// Paths of `self` that are not in `other` (exactly those paths: descendants stay).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    fn prune_empty(&mut self) {
        self.children.retain(|_, c| !c.is_empty());
    }

    /// Every path of the set, members of a node before the paths below its children, each
    /// group sorted (the order in which the server lists conflicts).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `fieldsV1` JSON encoding (`f:`, `k:`, `v:`, `i:` keys, `"."` for a member with
    /// children), keys in the server's order.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            let child = self.children.get(pe).filter(|c| !c.is_empty());
            let value = match child {
                Some(child) => {
                    let mut inner = Map::new();
                    if self.members.contains(pe) {
                        inner.insert(".".to_string(), Value::Object(Map::new()));
                    }
                    if let Value::Object(m) = child.to_fields_v1() {
                        inner.extend(m);
                    }
                    Value::Object(inner)
                }
                None => Value::Object(Map::new()),
            };
            out.insert(pe.encode(), value);
        }
        Value::Object(out)
    }

    /// Parses the `fieldsV1` JSON encoding.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "fieldsV1 must be an object".to_string())?;
        let mut set = FieldSet::new();
        for (key, val) in obj {
            if key == "." {
                continue;
            }
            let pe = PathElement::decode(key)?;
            let inner = val
                .as_object()
                .ok_or_else(|| format!("fieldsV1 value under {key:?} must be an object"))?;
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(pe.clone());
            }
            if inner.keys().any(|k| k != ".") {
                let child = FieldSet::from_fields_v1(val)?;
                if !child.is_empty() {
                    set.children.insert(pe, child);
                }
            }
        }
        Ok(set)
    }
}

// ---------------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------------

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update, merge/JSON/strategic patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`fieldManager` query parameter or derived from the User-Agent).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields were written in.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339, seconds). `None` for an applier
    /// whose apply changed nothing yet: the server then writes no `time` at all.
    pub time: Option<String>,
    /// `Some("status")` for writes through `/status`.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Parses one element of the `managedFields` array.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "managedFields entry must be an object".to_string())?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let operation = match s("operation").as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(format!("invalid managedFields operation {other:?}")),
        };
        let fields = match obj.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::new(),
        };
        Ok(ManagedFieldsEntry {
            manager: s("manager").unwrap_or_default(),
            operation,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").filter(|x| !x.is_empty()),
            fields,
        })
    }

    /// Serialises the entry with the keys in the order a built-in (typed) kind shows them:
    /// manager, operation, apiVersion, time, fieldsType, fieldsV1, subresource.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(m)
    }

    /// Serialises the entry with sorted keys, as custom resources (stored unstructured) show
    /// them: apiVersion, fieldsType, fieldsV1, manager, operation, subresource, time.
    pub fn to_json_sorted(&self) -> Value {
        let typed = self.to_json();
        let mut entries: Vec<(String, Value)> = match typed {
            Value::Object(m) => m.into_iter().collect(),
            _ => Vec::new(),
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Object(entries.into_iter().collect())
    }

    /// The manager identity the server keys entries by: manager, operation, subresource, and
    /// for Update entries also apiVersion (JSON, as the server builds it).
    fn identifier(&self) -> String {
        manager_identifier(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }

    fn same_identity(&self, other: &ManagedFieldsEntry) -> bool {
        self.identifier() == other.identifier()
    }
}

fn manager_identifier(
    manager: &str,
    operation: Operation,
    api_version: &str,
    subresource: Option<&str>,
) -> String {
    let mut s = format!(
        "{{\"manager\":{},\"operation\":\"{}\"",
        go_json(&Value::String(manager.to_string())),
        operation.as_str()
    );
    if operation == Operation::Update && !api_version.is_empty() {
        s.push_str(&format!(
            ",\"apiVersion\":{}",
            go_json(&Value::String(api_version.to_string()))
        ));
    }
    if let Some(sub) = subresource {
        s.push_str(&format!(
            ",\"subresource\":{}",
            go_json(&Value::String(sub.to_string()))
        ));
    }
    s.push('}');
    s
}

/// Parses a `metadata.managedFields` array (absent or `null` is empty).
pub fn parse_managed_fields(v: Option<&Value>) -> Result<Vec<ManagedFieldsEntry>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(ManagedFieldsEntry::from_json).collect(),
        Some(_) => Err("managedFields must be a list".to_string()),
    }
}

/// Serialises entries as a `metadata.managedFields` array; `sorted_keys` for custom resources
/// (see [`ManagedFieldsEntry::to_json_sorted`]).
pub fn managed_fields_to_json(entries: &[ManagedFieldsEntry], sorted_keys: bool) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                if sorted_keys {
                    e.to_json_sorted()
                } else {
                    e.to_json()
                }
            })
            .collect(),
    )
}

/// Sorts entries as the server does: Apply before Update, then by time in seconds (no time
/// first), then manager, apiVersion, subresource.
pub fn sort_entries(entries: &mut [ManagedFieldsEntry]) {
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| time_seconds(&p.time).cmp(&time_seconds(&q.time)))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| {
                p.subresource
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.subresource.as_deref().unwrap_or(""))
            })
    });
}

fn time_seconds(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|ts| ts.as_second())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Server-side apply
// ---------------------------------------------------------------------------------------------

/// The input of [`apply`].
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The current object, or `None` when the apply creates it.
    pub live: Option<&'a Value>,
    /// The current managedFields.
    pub managed: &'a [ManagedFieldsEntry],
    /// The applied configuration as sent (YAML already parsed into JSON).
    pub config: &'a Value,
    /// The field manager.
    pub manager: &'a str,
    /// `force=true`.
    pub force: bool,
    /// `Some("status")` for an apply to `/status`.
    pub subresource: Option<&'a str>,
    /// The apiVersion of the request (recorded in the entry).
    pub api_version: &'a str,
    /// The current time, RFC 3339 with seconds (`2026-11-23T11:31:32Z`).
    pub now: &'a str,
    /// The object's schema.
    pub schema: &'a Schema,
}

/// The result of a successful [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOutcome {
    /// The new object, without `metadata.managedFields` (the caller sets resourceVersion etc.).
    pub object: Value,
    /// The new managedFields, in the server's order.
    pub managed: Vec<ManagedFieldsEntry>,
    /// False when the object itself did not change (an identical re-apply: the server answers
    /// 200 without a write unless the managedFields changed).
    pub changed: bool,
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The other manager's operation (Update managers are printed `using <apiVersion>`).
    pub operation: Operation,
    /// The other manager's apiVersion.
    pub api_version: String,
    /// The field, rendered as the server renders it (`.data.a`).
    pub field: String,
    /// The other manager's subresource.
    pub subresource: Option<String>,
}

impl Conflict {
    fn manager_display(&self) -> String {
        let mut s = go_json(&Value::String(self.manager.clone()));
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(
                " with subresource {}",
                go_json(&Value::String(sub.clone()))
            ));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn identifier(&self) -> String {
        manager_identifier(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }
}

/// Metadata the field manager never records as owned (the server's strip set).
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Server-set metadata an applied configuration cannot change.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

fn strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    s.insert(&[PathElement::Field("apiVersion".into())]);
    s.insert(&[PathElement::Field("kind".into())]);
    s.insert(&[PathElement::Field("metadata".into())]);
    for f in STRIPPED_METADATA {
        s.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field((*f).into()),
        ]);
    }
    s
}

/// Server-side apply: merges `config` into `live`, updates ownership, or reports conflicts.
pub fn apply(req: &ApplyRequest) -> Result<ApplyOutcome, Vec<Conflict>> {
    let schema = req.schema;
    let subresource = req.subresource.map(str::to_string);
    let live_obj = req
        .live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let config = effective_config(req.config, schema, req.subresource);

    // The applier's new set.
    let mut new_set = FieldSet::new();
    apply_field_set(&config, &mut Vec::new(), "", schema, &mut new_set);
    let new_set = new_set.difference(&strip_set());

    let me = ManagedFieldsEntry {
        manager: req.manager.to_string(),
        operation: Operation::Apply,
        api_version: req.api_version.to_string(),
        time: None,
        subresource: subresource.clone(),
        fields: FieldSet::new(),
    };
    let previous = req.managed.iter().find(|e| e.same_identity(&me));
    let others: Vec<&ManagedFieldsEntry> = req
        .managed
        .iter()
        .filter(|e| !e.same_identity(&me))
        .collect();

    // Merge, then remove what the applier owned before, no longer applies and nobody else owns.
    let mut merged = merge_values(Some(&live_obj), &config, "", schema);
    if let Some(prev) = previous {
        let mut owned = new_set.clone();
        for o in &others {
            owned = owned.union(&o.fields);
        }
        let mut stale: Vec<Path> = prev
            .fields
            .paths()
            .into_iter()
            .filter(|p| !owned.contains(p) && !owned.has_descendant(p))
            .collect();
        stale.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in stale {
            remove_path(&mut merged, &p);
        }
    }

    let cmp = compare(&live_obj, &merged, schema);
    let changed_set = cmp.modified.union(&cmp.added);

    let mut conflicts = Vec::new();
    let mut others_sorted = others.clone();
    others_sorted.sort_by_key(|e| e.identifier());
    for o in &others_sorted {
        let clash = o.fields.intersection(&changed_set);
        if clash.is_empty() {
            continue;
        }
        for field in aliased_conflict_paths(&clash) {
            conflicts.push(Conflict {
                manager: o.manager.clone(),
                operation: o.operation,
                api_version: o.api_version.clone(),
                field,
                subresource: o.subresource.clone(),
            });
        }
    }
    if !req.force && !conflicts.is_empty() {
        return Err(conflicts);
    }

    let changed = merged != live_obj;
    let mut managed: Vec<ManagedFieldsEntry> = Vec::new();
    for e in req.managed {
        if e.same_identity(&me) {
            continue;
        }
        let mut e = e.clone();
        e.fields = e.fields.difference(&changed_set).difference(&cmp.removed);
        if !e.fields.is_empty() {
            managed.push(e);
        }
    }
    if !new_set.is_empty() {
        let time = if changed {
            Some(req.now.to_string())
        } else {
            previous.and_then(|p| p.time.clone())
        };
        managed.push(ManagedFieldsEntry {
            time,
            fields: new_set,
            ..me
        });
    }
    sort_entries(&mut managed);
    Ok(ApplyOutcome {
        object: merged,
        managed,
        changed,
    })
}

/// The applied configuration the field manager works with: server-set metadata removed, and
/// with a status subresource only `status` (through `/status`) or everything but `status`.
fn effective_config(config: &Value, schema: &Schema, subresource: Option<&str>) -> Value {
    let mut config = config.clone();
    if let Some(Value::Object(meta)) = config.get_mut("metadata") {
        for f in SERVER_METADATA {
            meta.shift_remove(*f);
        }
    }
    if let Value::Object(obj) = &mut config {
        if subresource == Some("status") {
            let keep: Vec<String> = obj
                .keys()
                .filter(|k| matches!(k.as_str(), "apiVersion" | "kind" | "status"))
                .cloned()
                .collect();
            let identity = obj.get("metadata").map(|m| {
                let mut out = Map::new();
                for k in ["name", "namespace"] {
                    if let Some(v) = m.get(k) {
                        out.insert(k.to_string(), v.clone());
                    }
                }
                Value::Object(out)
            });
            obj.retain(|k, _| keep.contains(k));
            if let Some(meta) = identity {
                obj.insert("metadata".to_string(), meta);
            }
        } else if schema.status_subresource {
            obj.shift_remove("status");
        }
    }
    config
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
    v
}

/// The fields an applied configuration sets (structured-merge-diff's `ToFieldSet`).
fn apply_field_set(v: &Value, path: &mut Path, spath: &str, schema: &Schema, out: &mut FieldSet) {
    match v {
        Value::Object(m) => {
            if !path.is_empty() && schema.is_atomic_map(spath) {
                out.insert(path);
                return;
            }
            let undeclared = schema.keys_undeclared(spath);
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                let child_spath = format!("{spath}.{k}");
                apply_field_set(child, path, &child_spath, schema, out);
                let empty_map = matches!(child, Value::Object(c) if c.is_empty());
                if child.is_null() || empty_map || undeclared {
                    out.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => match schema.list_type(spath) {
            ListType::Atomic => out.insert(path),
            lt => {
                let item_spath = format!("{spath}[]");
                for (i, item) in items.iter().enumerate() {
                    path.push(item_element(&lt, item, i));
                    apply_field_set(item, path, &item_spath, schema, out);
                    out.insert(path);
                    path.pop();
                }
            }
        },
        _ => out.insert(path),
    }
}

fn item_element(lt: &ListType, item: &Value, index: usize) -> PathElement {
    match lt {
        ListType::Map(keys) => {
            let mut fields: Vec<(String, Value)> = Vec::new();
            for k in keys {
                match item.get(k) {
                    Some(v) => fields.push((k.clone(), v.clone())),
                    None => return PathElement::Index(index),
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            PathElement::Key(fields)
        }
        ListType::Set => PathElement::Value(item.clone()),
        ListType::Atomic => PathElement::Index(index),
    }
}

/// Merges an applied value into a live one: maps by key, list-maps by key and sets by value
/// (in structured-merge-diff's order), anything else replaced. `null` in the configuration
/// removes the field.
fn merge_values(lhs: Option<&Value>, rhs: &Value, spath: &str, schema: &Schema) -> Value {
    match (lhs, rhs) {
        (Some(Value::Object(l)), Value::Object(r)) if !schema.is_atomic_map(spath) => {
            let mut out = Map::new();
            for (k, lv) in l {
                match r.get(k) {
                    Some(Value::Null) => {}
                    Some(rv) => {
                        out.insert(
                            k.clone(),
                            merge_values(Some(lv), rv, &format!("{spath}.{k}"), schema),
                        );
                    }
                    None => {
                        out.insert(k.clone(), lv.clone());
                    }
                }
            }
            for (k, rv) in r {
                if !l.contains_key(k) && !rv.is_null() {
                    out.insert(
                        k.clone(),
                        merge_values(None, rv, &format!("{spath}.{k}"), schema),
                    );
                }
            }
            Value::Object(out)
        }
        (None, Value::Object(r)) | (Some(_), Value::Object(r)) => {
            if schema.is_atomic_map(spath) {
                return rhs.clone();
            }
            let mut out = Map::new();
            for (k, rv) in r {
                if !rv.is_null() {
                    out.insert(
                        k.clone(),
                        merge_values(None, rv, &format!("{spath}.{k}"), schema),
                    );
                }
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(r)) => match schema.list_type(spath) {
            ListType::Atomic => rhs.clone(),
            lt => Value::Array(merge_lists(l, r, &lt, &format!("{spath}[]"), schema)),
        },
        _ => rhs.clone(),
    }
}

/// structured-merge-diff's associative list merge (`visitListItems`): shared items keep the
/// configuration's order, live-only items stay where they are.
fn merge_lists(
    l: &[Value],
    r: &[Value],
    lt: &ListType,
    item_spath: &str,
    schema: &Schema,
) -> Vec<Value> {
    let l_pes: Vec<PathElement> = l
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(lt, v, i))
        .collect();
    let r_pes: Vec<PathElement> = r
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(lt, v, i))
        .collect();
    let find = |pes: &[PathElement], pe: &PathElement| pes.iter().position(|p| p == pe);
    let shared: Vec<&PathElement> = r_pes
        .iter()
        .filter(|pe| find(&l_pes, pe).is_some())
        .collect();
    let mut shared_i = 0usize;
    let mut next_shared = shared.first().copied();
    let mut merged_rhs: Vec<PathElement> = Vec::new();
    let merge_item = |li: Option<usize>, ri: usize| -> Value {
        match lt {
            ListType::Set => r[ri].clone(),
            _ => merge_values(li.map(|i| &l[i]), &r[ri], item_spath, schema),
        }
    };
    let mut out = Vec::new();
    let (mut li, mut ri) = (0usize, 0usize);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let pe = &l_pes[li];
            if *pe == r_pes[ri] {
                merged_rhs.push(pe.clone());
                out.push(merge_item(find(&l_pes, pe), ri));
                li += 1;
                ri += 1;
                shared_i += 1;
                next_shared = shared.get(shared_i).copied();
                continue;
            }
            if find(&r_pes, pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < l.len() {
            let pe = &l_pes[li];
            if find(&r_pes, pe).is_none() {
                out.push(l[li].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < r.len() {
            let pe = r_pes[ri].clone();
            let first_r = find(&r_pes, &pe).unwrap_or(ri);
            if !merged_rhs.contains(&pe) {
                out.push(merge_item(find(&l_pes, &pe), first_r));
            }
            merged_rhs.push(pe.clone());
            ri += 1;
            if next_shared.is_some_and(|n| *n == pe) {
                shared_i += 1;
                next_shared = shared.get(shared_i).copied();
            }
        }
    }
    out
}

/// Removes the value at `path` from `obj` (a no-op when absent).
fn remove_path(obj: &mut Value, path: &[PathElement]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parents {
        let next = match child_mut(cur, pe) {
            Some(n) => n,
            None => return,
        };
        cur = next;
    }
    match (cur, last) {
        (Value::Object(m), PathElement::Field(name)) => {
            m.shift_remove(name);
        }
        (Value::Array(items), pe) => {
            if let Some(i) = items
                .iter()
                .enumerate()
                .position(|(i, it)| item_matches(it, i, pe))
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn child_mut<'v>(v: &'v mut Value, pe: &PathElement) -> Option<&'v mut Value> {
    match (v, pe) {
        (Value::Object(m), PathElement::Field(name)) => m.get_mut(name),
        (Value::Array(items), pe) => items
            .iter_mut()
            .enumerate()
            .find(|(i, it)| item_matches(it, *i, pe))
            .map(|(_, it)| it),
        _ => None,
    }
}

fn item_matches(item: &Value, index: usize, pe: &PathElement) -> bool {
    match pe {
        PathElement::Key(fields) => fields.iter().all(|(k, v)| item.get(k) == Some(v)),
        PathElement::Value(v) => item == v,
        PathElement::Index(i) => *i == index,
        PathElement::Field(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/// What changed between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn compare(old: &Value, new: &Value, schema: &Schema) -> Comparison {
    let mut c = Comparison::default();
    compare_at(Some(old), Some(new), &mut Vec::new(), "", schema, &mut c);
    c
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    spath: &str,
    schema: &Schema,
    c: &mut Comparison,
) {
    let atomic_map = !path.is_empty() && schema.is_atomic_map(spath);
    match (old, new) {
        (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None)
            if !atomic_map && (old.is_some() || new.is_some()) =>
        {
            let empty = Map::new();
            let o = old.and_then(Value::as_object).unwrap_or(&empty);
            let n = new.and_then(Value::as_object).unwrap_or(&empty);
            let keys: Vec<&String> = o
                .keys()
                .chain(n.keys().filter(|k| !o.contains_key(*k)))
                .collect();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                let child_spath = format!("{spath}.{k}");
                compare_child(o.get(k), n.get(k), path, &child_spath, schema, c);
                path.pop();
            }
        }
        (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None)
            if old.is_some() || new.is_some() =>
        {
            let lt = schema.list_type(spath);
            if lt == ListType::Atomic {
                if old.is_some() && new.is_some() && old != new {
                    c.modified.insert(path);
                }
                return;
            }
            let empty = Vec::new();
            let o = old.and_then(Value::as_array).unwrap_or(&empty);
            let n = new.and_then(Value::as_array).unwrap_or(&empty);
            let o_items: Vec<(PathElement, &Value)> = o
                .iter()
                .enumerate()
                .map(|(i, v)| (item_element(&lt, v, i), v))
                .collect();
            let n_items: Vec<(PathElement, &Value)> = n
                .iter()
                .enumerate()
                .map(|(i, v)| (item_element(&lt, v, i), v))
                .collect();
            let mut seen: Vec<&PathElement> = Vec::new();
            let item_spath = format!("{spath}[]");
            for (pe, _) in o_items.iter().chain(n_items.iter()) {
                if seen.contains(&pe) {
                    continue;
                }
                seen.push(pe);
                let ov = o_items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
                let nv = n_items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
                path.push(pe.clone());
                compare_child(ov, nv, path, &item_spath, schema, c);
                path.pop();
            }
        }
        (Some(o), Some(n)) if o != n => c.modified.insert(path),
        _ => {}
    }
}

fn compare_child(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    spath: &str,
    schema: &Schema,
    c: &mut Comparison,
) {
    let kinds_differ = matches!((old, new), (Some(o), Some(n)) if !same_kind(o, n));
    if kinds_differ {
        c.modified.insert(path);
        return;
    }
    compare_at(old, new, path, spath, schema, c);
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    ) || (!a.is_object() && !a.is_array() && !b.is_object() && !b.is_array())
}

// ---------------------------------------------------------------------------------------------
// Non-apply writes
// ---------------------------------------------------------------------------------------------

/// Ownership after a create, update or patch by `manager`.
///
/// `old` is the stored object (`None` for a create), `new` the object as it will be stored
/// (after defaulting and the caller's own changes; `managedFields` in either is ignored).
/// The manager's Update entry gains what the write added or changed, every entry loses what
/// the write removed, other entries lose what it changed; empty entries disappear; the
/// manager's time moves only when it gained fields.
#[allow(clippy::too_many_arguments)]
pub fn update(
    old: Option<&Value>,
    new: &Value,
    managed: Vec<ManagedFieldsEntry>,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
    now: &str,
    schema: &Schema,
) -> Vec<ManagedFieldsEntry> {
    let old_obj = match old {
        Some(o) => without_managed_fields(o),
        None => empty_object(schema),
    };
    let new_obj = without_managed_fields(new);
    let cmp = compare(&old_obj, &new_obj, schema);
    let changed = cmp.modified.union(&cmp.added);
    let gained = changed.difference(&strip_set());

    let me = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: Operation::Update,
        api_version: api_version.to_string(),
        time: Some(now.to_string()),
        subresource: subresource.map(str::to_string),
        fields: FieldSet::new(),
    };
    let mut out: Vec<ManagedFieldsEntry> = Vec::new();
    let mut mine: Option<ManagedFieldsEntry> = None;
    for mut e in managed {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        if e.same_identity(&me) {
            match &mut mine {
                Some(m) => m.fields = m.fields.union(&e.fields),
                None => mine = Some(e),
            }
        } else if !e.fields.is_empty() {
            out.push(e);
        }
    }
    if !gained.is_empty() {
        let fields = match &mine {
            Some(m) => m.fields.union(&gained),
            None => gained,
        };
        mine = Some(ManagedFieldsEntry { fields, ..me });
    }
    if let Some(m) = mine.filter(|m| !m.fields.is_empty()) {
        out.push(m);
    }
    sort_entries(&mut out);
    out
}

fn empty_object(schema: &Schema) -> Value {
    let mut m = Map::new();
    m.insert("metadata".to_string(), Value::Object(Map::new()));
    for p in &schema.present_when_empty {
        if let Some(name) = p.strip_prefix('.') {
            if !name.contains('.') {
                m.insert(name.to_string(), Value::Object(Map::new()));
            }
        }
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------------------------

/// The paths of a conflict set as kube-apiserver v1.28 prints them. Its structured-merge-diff
/// collects the paths while iterating without copying them, so paths that share a prefix
/// whose Go slice still has spare capacity (depth 4, 6 to 8, …) all show the last element
/// written there: `.status.conditions[type="Ready"].reason` and `….status` both read
/// `….status` (recorded in status-ssa.json). This reproduces Go's `append` growth.
fn aliased_conflict_paths(set: &FieldSet) -> Vec<String> {
    struct Arena(Vec<Vec<Option<PathElement>>>);
    #[derive(Clone, Copy)]
    struct Slice {
        buf: usize,
        len: usize,
        cap: usize,
    }
    fn append(arena: &mut Arena, s: Option<Slice>, pe: &PathElement) -> Slice {
        if let Some(s) = s {
            if s.len < s.cap {
                arena.0[s.buf][s.len] = Some(pe.clone());
                return Slice {
                    buf: s.buf,
                    len: s.len + 1,
                    cap: s.cap,
                };
            }
        }
        let (old_len, old_cap, old_buf) = match s {
            Some(s) => (s.len, s.cap, Some(s.buf)),
            None => (0, 0, None),
        };
        let needed = old_len + 1;
        let cap = if needed > old_cap * 2 {
            needed
        } else {
            old_cap * 2
        }
        .next_power_of_two();
        let mut buf = vec![None; cap];
        if let Some(b) = old_buf {
            buf[..old_len].clone_from_slice(&arena.0[b][..old_len]);
        }
        buf[old_len] = Some(pe.clone());
        arena.0.push(buf);
        Slice {
            buf: arena.0.len() - 1,
            len: needed,
            cap,
        }
    }
    fn walk(set: &FieldSet, prefix: Option<Slice>, arena: &mut Arena, out: &mut Vec<Slice>) {
        for pe in &set.members {
            let s = append(arena, prefix, pe);
            out.push(s);
        }
        for (pe, child) in &set.children {
            let s = append(arena, prefix, pe);
            walk(child, Some(s), arena, out);
        }
    }
    let mut arena = Arena(Vec::new());
    let mut slices = Vec::new();
    walk(set, None, &mut arena, &mut slices);
    slices
        .iter()
        .map(|s| {
            arena.0[s.buf][..s.len]
                .iter()
                .flatten()
                .map(|pe| pe.to_string())
                .collect()
        })
        .collect()
}

/// The 409 `Status` body the server answers a conflicting apply with.
pub fn conflict_status(conflicts: &[Conflict]) -> Value {
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].manager_display(),
            conflicts[0].field
        )
    } else {
        let mut groups: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
        for c in conflicts {
            groups
                .entry(c.identifier())
                .or_insert_with(|| (c.manager_display(), Vec::new()))
                .1
                .push(&c.field);
        }
        let mut lines = Vec::new();
        for (display, fields) in groups.values() {
            lines.push(format!("conflicts with {display}:"));
            for f in fields {
                lines.push(format!("- {f}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            serde_json::json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager_display()),
                "field": c.field,
            })
        })
        .collect();
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Conflict",
        "details": {"causes": causes},
        "code": 409,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// JSON as Go's encoder writes it (compact; `<`, `>`, `&` escaped).
fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// structured-merge-diff's total order on values: numbers, strings, booleans, lists, maps,
/// null.
fn compare_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .partial_cmp(&y.as_f64().unwrap_or(0.0))
                .unwrap_or(Ordering::Equal),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((kp, vp), (kq, vq)) in xs.iter().zip(ys.iter()) {
                let c = kp.cmp(kq).then_with(|| compare_values(vp, vq));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-11-23T11:31:32Z";
    const LATER: &str = "2026-11-23T11:40:00Z";

    fn fields_of(managed: &[ManagedFieldsEntry], manager: &str) -> Value {
        managed
            .iter()
            .find(|e| e.manager == manager)
            .map(|e| e.fields.to_fields_v1())
            .unwrap_or(Value::Null)
    }

    fn req<'a>(
        live: Option<&'a Value>,
        managed: &'a [ManagedFieldsEntry],
        config: &'a Value,
        manager: &'a str,
        force: bool,
        schema: &'a Schema,
    ) -> ApplyRequest<'a> {
        ApplyRequest {
            live,
            managed,
            config,
            manager,
            force,
            subresource: None,
            api_version: "v1",
            now: NOW,
            schema,
        }
    }

    #[test]
    fn fields_v1_round_trips_keys_markers_and_order() {
        // kube-apiserver's status entry on a CRD (status-ssa.json step 1).
        let text = r#"{"f:status":{"f:acceptedNames":{"f:kind":{},"f:listKind":{},"f:plural":{},"f:singular":{}},"f:conditions":{"k:{\"type\":\"Established\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},"k:{\"type\":\"NamesAccepted\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}}}}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert_eq!(serde_json::to_string(&set.to_fields_v1()).unwrap(), text);
        let ready = |f: &str| {
            vec![
                PathElement::Field("status".into()),
                PathElement::Field("conditions".into()),
                PathElement::Key(vec![("type".into(), json!("Established"))]),
                PathElement::Field(f.into()),
            ]
        };
        assert!(set.contains(&ready("status")));
        assert!(
            set.contains(&ready("status")[..3]),
            "the item itself is a member"
        );
        assert!(!set.contains(&ready("status")[..2]), "conditions is not");
    }

    #[test]
    fn fields_v1_orders_fields_before_keys_and_sets_by_value() {
        let mut set = FieldSet::new();
        let base = [PathElement::Field("metadata".into())];
        for v in ["b", "a"] {
            let mut p = base.to_vec();
            p.push(PathElement::Field("finalizers".into()));
            p.push(PathElement::Value(json!(v)));
            set.insert(&p);
        }
        let mut p = base.to_vec();
        p.push(PathElement::Field("annotations".into()));
        set.insert(&p);
        assert_eq!(
            serde_json::to_string(&set.to_fields_v1()).unwrap(),
            r#"{"f:metadata":{"f:annotations":{},"f:finalizers":{"v:\"a\"":{},"v:\"b\"":{}}}}"#
        );
    }

    #[test]
    fn set_operations() {
        let a = FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}, "f:b": {}}})).unwrap();
        let b = FieldSet::from_fields_v1(&json!({"f:data": {"f:b": {}, "f:c": {}}})).unwrap();
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}})
        );
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:data": {"f:a": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:data": {"f:b": {}}})
        );
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn entry_key_order_typed_and_unstructured() {
        let typed = r#"{"manager":"kube-apiserver","operation":"Update","apiVersion":"apiextensions.k8s.io/v1","time":"2026-11-30T16:08:23Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:acceptedNames":{"f:kind":{}}}},"subresource":"status"}"#;
        let e = ManagedFieldsEntry::from_json(&serde_json::from_str(typed).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&e.to_json()).unwrap(), typed);
        // A custom resource's entry (status-ssa.json step 3): sorted keys.
        let sorted = r#"{"apiVersion":"gitops-seal.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:observedGeneration":{}}},"manager":"gitops-seal","operation":"Apply","subresource":"status","time":"2026-11-30T16:08:26Z"}"#;
        let e = ManagedFieldsEntry::from_json(&serde_json::from_str(sorted).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&e.to_json_sorted()).unwrap(), sorted);
        // An applier that changed nothing has no time (ssa-secret.json step 4).
        let no_time = r#"{"manager":"kubectl-edit","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:password":{}}}}"#;
        let e = ManagedFieldsEntry::from_json(&serde_json::from_str(no_time).unwrap()).unwrap();
        assert_eq!(e.time, None);
        assert_eq!(serde_json::to_string(&e.to_json()).unwrap(), no_time);
    }

    /// server-side-apply.json, every step.
    #[test]
    fn configmap_apply_conflict_force_and_removal() {
        let schema = Schema::for_builtin();
        let cfg1 = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c1", "labels": {"owner": "one"}}, "data": {"a": "1", "b": "2"}});
        let out = apply(&req(None, &[], &cfg1, "gitops-seal", false, &schema)).unwrap();
        assert_eq!(out.object["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            managed_fields_to_json(&out.managed, false),
            json!([{"manager": "gitops-seal", "operation": "Apply", "apiVersion": "v1",
                "time": NOW, "fieldsType": "FieldsV1", "fieldsV1": {
                "f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}}}])
        );
        let live = out.object;
        let managed = out.managed;

        let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"},
            "data": {"a": "changed"}});
        let conflicts = apply(&req(
            Some(&live),
            &managed,
            &cfg2,
            "someone-else",
            false,
            &schema,
        ))
        .unwrap_err();
        assert_eq!(
            conflict_status(&conflicts),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Apply failed with 1 conflict: conflict with \"gitops-seal\": .data.a",
                "reason": "Conflict", "details": {"causes": [{"reason": "FieldManagerConflict",
                "message": "conflict with \"gitops-seal\"", "field": ".data.a"}]}, "code": 409})
        );
        assert_eq!(
            serde_json::to_string(&conflict_status(&conflicts)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 1 conflict: conflict with \"gitops-seal\": .data.a","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal\"","field":".data.a"}]},"code":409}"#
        );

        let out = apply(&req(
            Some(&live),
            &managed,
            &cfg2,
            "someone-else",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"a": "changed", "b": "2"}));
        assert_eq!(out.object["metadata"]["labels"], json!({"owner": "one"}));
        assert_eq!(
            out.managed
                .iter()
                .map(|e| e.manager.as_str())
                .collect::<Vec<_>>(),
            ["gitops-seal", "someone-else"]
        );
        assert_eq!(
            fields_of(&out.managed, "gitops-seal"),
            json!({"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}})
        );
        assert_eq!(
            fields_of(&out.managed, "someone-else"),
            json!({"f:data": {"f:a": {}}})
        );

        // gitops-seal takes `a` back: someone-else is left with nothing and disappears.
        let out = apply(&req(
            Some(&out.object),
            &out.managed,
            &cfg1,
            "gitops-seal",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(out.managed.len(), 1);

        // Re-applying without `b` removes it from the object and from the entry.
        let cfg3 = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c1", "labels": {"owner": "one"}}, "data": {"a": "1"}});
        let out = apply(&req(
            Some(&out.object),
            &out.managed,
            &cfg3,
            "gitops-seal",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"a": "1"}));
        assert_eq!(
            fields_of(&out.managed, "gitops-seal"),
            json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}})
        );
    }

    /// ssa-secret.json steps 0-4.
    #[test]
    fn secret_apply_owner_reference_and_shared_ownership() {
        let schema = Schema::for_builtin();
        let owner = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "name": "db",
            "uid": "f0776645-4798-40c2-af4b-4e1f2b01151d", "controller": true, "blockOwnerDeletion": true});
        let cfg = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db",
            "namespace": "transcripts2", "labels": {"app.kubernetes.io/managed-by": "gitops-seal", "tier": "db"},
            "annotations": {"gitops-seal.dev/source": "prod/db"}, "ownerReferences": [owner]},
            "type": "Opaque", "data": {"password": "czNjcjN0", "username": "YWRtaW4="}});
        let out = apply(&req(None, &[], &cfg, "gitops-seal", true, &schema)).unwrap();
        let recorded = r#"{"f:data":{"f:password":{},"f:username":{}},"f:metadata":{"f:annotations":{"f:gitops-seal.dev/source":{}},"f:labels":{"f:app.kubernetes.io/managed-by":{},"f:tier":{}},"f:ownerReferences":{"k:{\"uid\":\"f0776645-4798-40c2-af4b-4e1f2b01151d\"}":{}}},"f:type":{}}"#;
        assert_eq!(
            serde_json::to_string(&fields_of(&out.managed, "gitops-seal")).unwrap(),
            recorded
        );

        // Dropping `username` removes it.
        let mut cfg1 = cfg.clone();
        cfg1["data"] = json!({"password": "czNjcjN0"});
        let out = apply(&req(
            Some(&out.object),
            &out.managed,
            &cfg1,
            "gitops-seal",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"password": "czNjcjN0"}));
        assert_eq!(out.object["metadata"]["ownerReferences"], json!([owner]));
        let (live, managed) = (out.object, out.managed);

        // Another manager with a different value: conflict.
        let other = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "b3RoZXI="}});
        let c = apply(&req(
            Some(&live),
            &managed,
            &other,
            "kubectl-edit",
            false,
            &schema,
        ))
        .unwrap_err();
        assert_eq!(
            conflict_status(&c)["message"],
            "Apply failed with 1 conflict: conflict with \"gitops-seal\": .data.password"
        );

        // The same value: shared, no write, the new entry has no time and sorts first.
        let same = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "czNjcjN0"}});
        let mut r = req(Some(&live), &managed, &same, "kubectl-edit", false, &schema);
        r.now = LATER;
        let out = apply(&r).unwrap();
        assert!(!out.changed);
        assert_eq!(out.object, live);
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&out.managed, false)).unwrap(),
            format!(
                r#"[{{"manager":"kubectl-edit","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{{"f:data":{{"f:password":{{}}}}}}}},{{"manager":"gitops-seal","operation":"Apply","apiVersion":"v1","time":"{NOW}","fieldsType":"FieldsV1","fieldsV1":{}}}]"#,
                recorded.replace(r#","f:username":{}"#, "")
            )
        );
    }

    /// lease-ssa.json steps 0-4: causes in path order, shared equal values.
    #[test]
    fn lease_takeover_by_apply() {
        let schema = Schema::for_builtin_kind("Lease");
        let lease = |holder: &str, t: &str, transitions: i64| {
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "gitops-seal-leader", "namespace": "transcripts2"},
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": t,
                    "renewTime": t, "leaseTransitions": transitions}})
        };
        let a = lease("pod-a", "2026-11-30T16:08:55.273910Z", 0);
        let mut r = req(None, &[], &a, "gitops-seal-pod-a", false, &schema);
        r.api_version = "coordination.k8s.io/v1";
        let out = apply(&r).unwrap();
        let b = lease("pod-b", "2026-11-30T16:09:25.292179Z", 1);
        let mut r = req(
            Some(&out.object),
            &out.managed,
            &b,
            "gitops-seal-pod-b",
            false,
            &schema,
        );
        r.api_version = "coordination.k8s.io/v1";
        let conflicts = apply(&r).unwrap_err();
        assert_eq!(
            serde_json::to_string(&conflict_status(&conflicts)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 4 conflicts: conflicts with \"gitops-seal-pod-a\":\n- .spec.acquireTime\n- .spec.holderIdentity\n- .spec.leaseTransitions\n- .spec.renewTime","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.acquireTime"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.holderIdentity"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.leaseTransitions"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.renewTime"}]},"code":409}"#
        );
        r.force = true;
        let out = apply(&r).unwrap();
        assert_eq!(out.object["spec"], b["spec"]);
        assert_eq!(
            fields_of(&out.managed, "gitops-seal-pod-a"),
            json!({"f:spec": {"f:leaseDurationSeconds": {}}})
        );
        assert_eq!(
            fields_of(&out.managed, "gitops-seal-pod-b"),
            json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {},
                "f:leaseTransitions": {}, "f:renewTime": {}}})
        );
    }

    fn sealed_secret_schema() -> Schema {
        Schema::with_lists(vec![(
            ".status.conditions".into(),
            ListType::Map(vec!["type".into()]),
        )])
        .free_form(vec![".spec.template".into()])
        .with_status_subresource(true)
    }

    fn cr_req<'a>(
        live: Option<&'a Value>,
        managed: &'a [ManagedFieldsEntry],
        config: &'a Value,
        manager: &'a str,
        force: bool,
        status: bool,
        schema: &'a Schema,
    ) -> ApplyRequest<'a> {
        ApplyRequest {
            subresource: status.then_some("status"),
            api_version: "gitops-seal.dev/v1",
            ..req(live, managed, config, manager, force, schema)
        }
    }

    /// status-ssa.json steps 2-11.
    #[test]
    fn status_subresource_apply_conditions_and_aliased_conflict_paths() {
        let schema = sealed_secret_schema();
        let spec = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "spec": {"scope": "strict", "recipients": ["age1qqqq"], "encryptedData": {"password": "c2VhbGVk"},
                "template": {"type": "Opaque", "metadata": {"labels": {"tier": "db"}}}}});
        let out = apply(&cr_req(
            None,
            &[],
            &spec,
            "gitops-seal-sync",
            true,
            false,
            &schema,
        ))
        .unwrap();
        assert_eq!(
            fields_of(&out.managed, "gitops-seal-sync"),
            json!({"f:spec": {"f:encryptedData": {"f:password": {}}, "f:recipients": {}, "f:scope": {},
                "f:template": {"f:metadata": {".": {}, "f:labels": {".": {}, "f:tier": {}}}, "f:type": {}}}})
        );

        let ready = |gen: i64, status: &str, reason: &str| {
            json!({"type": "Ready", "status": status, "reason": reason, "message": "Secret db unsealed",
                "observedGeneration": gen, "lastTransitionTime": "2026-11-23T00:00:00Z"})
        };
        // A spec in a status apply is dropped.
        let st = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"observedGeneration": 1, "conditions": [ready(1, "True", "Unsealed")]},
            "spec": {"scope": "cluster"}});
        let out = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &st,
            "gitops-seal",
            true,
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["spec"]["scope"], "strict");
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&out.managed, true)[0]).unwrap(),
            format!(
                r#"{{"apiVersion":"gitops-seal.dev/v1","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{"f:conditions":{{"k:{{\"type\":\"Ready\"}}":{{".":{{}},"f:lastTransitionTime":{{}},"f:message":{{}},"f:observedGeneration":{{}},"f:reason":{{}},"f:status":{{}},"f:type":{{}}}}}},"f:observedGeneration":{{}}}}}},"manager":"gitops-seal","operation":"Apply","subresource":"status","time":"{NOW}"}}"#
            )
        );

        // A status in a main-resource apply is dropped too.
        let mut spec_with_status = spec.clone();
        spec_with_status["status"] = json!({"observedGeneration": 9});
        let again = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &spec_with_status,
            "gitops-seal-sync",
            true,
            false,
            &schema,
        ))
        .unwrap();
        assert!(!again.changed);
        assert_eq!(again.object["status"]["observedGeneration"], 1);

        // A second manager owns a second condition.
        let synced = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"conditions": [{"type": "Synced", "status": "True", "reason": "Applied",
                "message": "", "lastTransitionTime": "2026-11-23T00:00:00Z"}]}});
        let out = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &synced,
            "other-ctl",
            false,
            true,
            &schema,
        ))
        .unwrap();
        let types: Vec<&Value> = out.object["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["type"])
            .collect();
        assert_eq!(types, [&json!("Ready"), &json!("Synced")]);

        // gitops-seal stops applying observedGeneration: removed from the object.
        let st2 = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"conditions": [ready(1, "True", "Unsealed")]}});
        let out = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &st2,
            "gitops-seal",
            true,
            true,
            &schema,
        ))
        .unwrap();
        assert!(out.object["status"].get("observedGeneration").is_none());
        assert_eq!(
            out.object["status"]["conditions"].as_array().unwrap().len(),
            2
        );

        // other-ctl contests status and reason of Ready: both causes read `.status` (step 11).
        let contest = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"conditions": [ready(1, "False", "DecryptFailed")]}});
        let c = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &contest,
            "other-ctl",
            false,
            true,
            &schema,
        ))
        .unwrap_err();
        assert_eq!(
            serde_json::to_string(&conflict_status(&c)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 2 conflicts: conflicts with \"gitops-seal\" with subresource \"status\":\n- .status.conditions[type=\"Ready\"].status\n- .status.conditions[type=\"Ready\"].status","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal\" with subresource \"status\"","field":".status.conditions[type=\"Ready\"].status"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal\" with subresource \"status\"","field":".status.conditions[type=\"Ready\"].status"}]},"code":409}"#
        );
    }

    #[test]
    fn aliasing_only_where_go_slices_share_storage() {
        let set = FieldSet::from_fields_v1(&json!({
            "f:a": {"f:b": {"f:c": {"f:d1": {}, "f:d2": {}}}, "f:x": {}, "f:y": {}},
            "f:top": {}
        }))
        .unwrap();
        assert_eq!(
            aliased_conflict_paths(&set),
            [".top", ".a.x", ".a.y", ".a.b.c.d2", ".a.b.c.d2"]
        );
    }

    #[test]
    fn conflict_with_update_manager_names_its_api_version() {
        let c = Conflict {
            manager: "Python-urllib".into(),
            operation: Operation::Update,
            api_version: "v1".into(),
            field: ".data.k".into(),
            subresource: None,
        };
        assert_eq!(
            conflict_status(&[c])["message"],
            "Apply failed with 1 conflict: conflict with \"Python-urllib\" using v1: .data.k"
        );
    }

    #[test]
    fn apply_over_update_owner_conflicts_and_force_takes_over() {
        let schema = Schema::for_builtin();
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "1", "j": "2"}});
        let managed = update(
            None,
            &obj,
            vec![],
            "Python-urllib",
            None,
            "v1",
            NOW,
            &schema,
        );
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "9"}});
        let c = apply(&req(Some(&obj), &managed, &cfg, "ctl", false, &schema)).unwrap_err();
        assert_eq!(c[0].field, ".data.k");
        assert_eq!(c[0].operation, Operation::Update);
        let out = apply(&req(Some(&obj), &managed, &cfg, "ctl", true, &schema)).unwrap();
        assert_eq!(out.object["data"], json!({"k": "9", "j": "2"}));
        assert_eq!(
            fields_of(&out.managed, "Python-urllib"),
            json!({"f:data": {".": {}, "f:j": {}}})
        );
        assert_eq!(
            out.managed[0].manager, "ctl",
            "Apply entries sort before Update entries"
        );
    }

    #[test]
    fn list_map_merge_keeps_live_only_items_and_config_order() {
        let schema =
            Schema::with_lists(vec![(".items".into(), ListType::Map(vec!["name".into()]))]);
        let live = json!({"items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]});
        let merged = merge_values(
            Some(&live),
            &json!({"items": [{"name": "c"}, {"name": "a", "v": 5}]}),
            "",
            &schema,
        );
        assert_eq!(
            merged["items"],
            json!([{"name": "c"}, {"name": "a", "v": 5}, {"name": "b", "v": 2}])
        );
        let atomic = merge_values(Some(&json!({"l": [1, 2]})), &json!({"l": [3]}), "", &schema);
        assert_eq!(atomic["l"], json!([3]));
    }

    #[test]
    fn bare_apply_owns_nothing() {
        let schema = Schema::for_builtin_kind("Namespace");
        let cfg = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bare-ns"}});
        let out = apply(&req(None, &[], &cfg, "gitops-seal", true, &schema)).unwrap();
        assert!(out.managed.is_empty());
    }

    /// create-get-conflict.json step 2 and patch-update-optimistic.json steps 1 and 3.
    #[test]
    fn update_marks_created_maps_and_follows_label_changes() {
        let schema = Schema::for_builtin_kind("Secret");
        let created = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s1",
            "namespace": "transcripts", "labels": {"app": "a"}},
            "data": {"k": "d2lucw==", "t": "dGV4dA=="}, "type": "Opaque"});
        let managed = update(
            None,
            &created,
            vec![],
            "Python-urllib",
            None,
            "v1",
            NOW,
            &schema,
        );
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&managed, false)).unwrap(),
            format!(
                r#"[{{"manager":"Python-urllib","operation":"Update","apiVersion":"v1","time":"{NOW}","fieldsType":"FieldsV1","fieldsV1":{{"f:data":{{".":{{}},"f:k":{{}},"f:t":{{}}}},"f:metadata":{{"f:labels":{{".":{{}},"f:app":{{}}}}}},"f:type":{{}}}}}}]"#
            )
        );
        let mut labelled = created.clone();
        labelled["metadata"]["labels"]["extra"] = json!("x");
        labelled["metadata"]["resourceVersion"] = json!("199");
        let managed = update(
            Some(&created),
            &labelled,
            managed,
            "Python-urllib",
            None,
            "v1",
            LATER,
            &schema,
        );
        assert_eq!(managed.len(), 1);
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:data": {".": {}, "f:k": {}, "f:t": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:extra": {}}}, "f:type": {}})
        );
        assert_eq!(managed[0].time.as_deref(), Some(LATER));
        let managed = update(
            Some(&labelled),
            &created,
            managed,
            "Python-urllib",
            None,
            "v1",
            LATER,
            &schema,
        );
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:data": {".": {}, "f:k": {}, "f:t": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:type": {}})
        );
    }

    #[test]
    fn update_without_change_keeps_time() {
        let schema = Schema::for_builtin();
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let managed = update(None, &obj, vec![], "m", None, "v1", NOW, &schema);
        let mut bumped = obj.clone();
        bumped["metadata"]["resourceVersion"] = json!("7");
        let managed = update(
            Some(&obj),
            &bumped,
            managed,
            "m",
            None,
            "v1",
            LATER,
            &schema,
        );
        assert_eq!(managed[0].time.as_deref(), Some(NOW));
    }

    /// strategic-merge-and-json-patch.json steps 1-3 (Lease renew and takeover by Update).
    #[test]
    fn update_takes_changed_fields_from_other_managers() {
        let schema = Schema::for_builtin_kind("Lease");
        let v1 = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": "gitops-seal", "namespace": "transcripts5"},
            "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                "acquireTime": "2026-11-30T16:35:33.810946Z", "renewTime": "2026-11-30T16:35:33.811011Z",
                "leaseTransitions": 0}});
        let av = "coordination.k8s.io/v1";
        let managed = update(None, &v1, vec![], "Python-urllib", None, av, NOW, &schema);
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {},
                "f:leaseTransitions": {}, "f:renewTime": {}}}),
            "spec exists in an empty Lease: no \".\""
        );
        let mut v2 = v1.clone();
        v2["spec"]["renewTime"] = json!("2026-11-30T16:35:34.819706Z");
        let managed = update(Some(&v1), &v2, managed, "pod-a", None, av, NOW, &schema);
        assert_eq!(
            managed
                .iter()
                .map(|e| e.manager.as_str())
                .collect::<Vec<_>>(),
            ["Python-urllib", "pod-a"]
        );
        assert_eq!(
            fields_of(&managed, "pod-a"),
            json!({"f:spec": {"f:renewTime": {}}})
        );
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {},
                "f:leaseTransitions": {}}})
        );
        let mut v3 = v2.clone();
        v3["spec"]["holderIdentity"] = json!("pod-b");
        v3["spec"]["renewTime"] = json!("2026-11-30T16:35:35.829818Z");
        let managed = update(
            Some(&v2),
            &v3,
            managed,
            "Python-urllib",
            None,
            av,
            NOW,
            &schema,
        );
        assert_eq!(managed.len(), 1, "pod-a lost its only field");
        assert!(managed[0].fields.contains(&[
            PathElement::Field("spec".into()),
            PathElement::Field("renewTime".into())
        ]));
    }

    /// crd-status-subresource.json steps 3-6.
    #[test]
    fn custom_resource_updates_and_status_apply() {
        let schema = Schema::with_lists(vec![]).with_status_subresource(true);
        let av = "example.dev/v1";
        let created = json!({"apiVersion": av, "kind": "Widget", "metadata": {"name": "w",
            "namespace": "transcripts"}, "spec": {"size": 1}});
        let managed = update(
            None,
            &created,
            vec![],
            "Python-urllib",
            None,
            av,
            NOW,
            &schema,
        );
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&managed, true)).unwrap(),
            format!(
                r#"[{{"apiVersion":"example.dev/v1","fieldsType":"FieldsV1","fieldsV1":{{"f:spec":{{".":{{}},"f:size":{{}}}}}},"manager":"Python-urllib","operation":"Update","time":"{NOW}"}}]"#
            )
        );
        let mut with_status = created.clone();
        with_status["status"] = json!({"observedGeneration": 1, "conditions": [{"type": "Ready"}]});
        let managed = update(
            Some(&created),
            &with_status,
            managed,
            "Python-urllib",
            Some("status"),
            av,
            NOW,
            &schema,
        );
        assert_eq!(managed.len(), 2, "the status writer is another entry");
        assert_eq!(
            managed[1].fields.to_fields_v1(),
            json!({"f:status": {".": {}, "f:conditions": {}, "f:observedGeneration": {}}})
        );
        let cfg = json!({"apiVersion": av, "kind": "Widget", "metadata": {"name": "w"},
            "status": {"observedGeneration": 2}});
        let out = apply(&ApplyRequest {
            subresource: Some("status"),
            api_version: av,
            ..req(Some(&with_status), &managed, &cfg, "ctl", true, &schema)
        })
        .unwrap();
        assert_eq!(
            managed_fields_to_json(&out.managed, true)
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["fieldsV1"].clone())
                .collect::<Vec<_>>(),
            [
                json!({"f:status": {"f:observedGeneration": {}}}),
                json!({"f:spec": {".": {}, "f:size": {}}}),
                json!({"f:status": {".": {}, "f:conditions": {}}}),
            ]
        );
    }

    #[test]
    fn sort_puts_apply_first_then_time_then_manager() {
        let e = |m: &str, op: Operation, t: Option<&str>| ManagedFieldsEntry {
            manager: m.into(),
            operation: op,
            api_version: "v1".into(),
            time: t.map(str::to_string),
            subresource: None,
            fields: FieldSet::new(),
        };
        let mut v = vec![
            e("a", Operation::Update, Some(NOW)),
            e("z", Operation::Apply, Some(NOW)),
            e("b", Operation::Apply, Some(LATER)),
            e("y", Operation::Apply, None),
        ];
        sort_entries(&mut v);
        let names: Vec<&str> = v.iter().map(|e| e.manager.as_str()).collect();
        assert_eq!(names, ["y", "z", "b", "a"]);
    }
}
