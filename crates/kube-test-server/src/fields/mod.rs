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
//!
//! By concern: [`Schema`] (list types), field paths and sets ([`FieldSet`], `fieldsV1`),
//! managedFields entries, [`apply`] (with the merge, the comparison and [`Conflict`]s) and
//! [`update`] for every other write.

mod apply;
mod compare;
mod conflict;
mod managed;
mod merge;
mod schema;
mod set;
#[cfg(test)]
mod testutil;
mod update;

use serde_json::Value;

pub use apply::{apply, ApplyOutcome, ApplyRequest};
pub use conflict::{conflict_status, Conflict};
pub use managed::{
    managed_fields_to_json, parse_managed_fields, sort_entries, ManagedFieldsEntry, Operation,
};
pub use schema::{ListType, Schema};
pub use set::{path_to_string, FieldSet, Path, PathElement};
pub use update::update;

use managed::manager_identifier;

/// JSON as Go's encoder writes it (compact; `<`, `>`, `&` escaped).
fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}
