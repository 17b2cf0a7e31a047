//! What the tests of this module share.

use serde_json::Value;

use super::{ApplyRequest, ListType, ManagedFieldsEntry, Schema};

pub(super) const NOW: &str = "2026-11-23T11:31:32Z";
pub(super) const LATER: &str = "2026-11-23T11:40:00Z";

pub(super) fn fields_of(managed: &[ManagedFieldsEntry], manager: &str) -> Value {
    managed
        .iter()
        .find(|e| e.manager == manager)
        .map(|e| e.fields.to_fields_v1())
        .unwrap_or(Value::Null)
}

pub(super) fn req<'a>(
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

pub(super) fn sealed_secret_schema() -> Schema {
    Schema::with_lists(vec![(
        ".status.conditions".into(),
        ListType::Map(vec!["type".into()]),
    )])
    .free_form(vec![".spec.template".into()])
    .with_status_subresource(true)
}

pub(super) fn cr_req<'a>(
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
