//! Apply conflicts: who owns what, the paths as v1.28 prints them, and the 409 `Status`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{go_json, manager_identifier, FieldSet, Operation, PathElement};

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

/// The paths of a conflict set as kube-apiserver v1.28 prints them. Its structured-merge-diff
/// collects the paths while iterating without copying them, so paths that share a prefix
/// whose Go slice still has spare capacity (depth 4, 6 to 8, …) all show the last element
/// written there: `.status.conditions[type="Ready"].reason` and `….status` both read
/// `….status` (recorded in status-ssa.json). This reproduces Go's `append` growth.
pub(super) fn aliased_conflict_paths(set: &FieldSet) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
