//! What the field manager knows of an object's schema: list types, atomic maps, free-form
//! parts, and the status subresource.

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
    pub(super) present_when_empty: Vec<String>,
    pub(super) status_subresource: bool,
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

    pub(super) fn list_type(&self, path: &str) -> ListType {
        if self.in_free_form(path) {
            return ListType::Atomic;
        }
        self.lists
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .unwrap_or(ListType::Atomic)
    }

    pub(super) fn is_atomic_map(&self, path: &str) -> bool {
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
    pub(super) fn keys_undeclared(&self, path: &str) -> bool {
        self.free_form.iter().any(|p| p == path) || self.in_free_form(path)
    }
}
