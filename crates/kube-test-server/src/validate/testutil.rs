//! What the tests of this module share.

use serde_json::{json, Value};

use crate::registry::{builtins, from_crd, ResourceType};

pub(super) fn rt(group: &str, kind: &str) -> ResourceType {
    builtins()
        .into_iter()
        .find(|t| t.group == group && t.kind == kind)
        .unwrap()
}

pub(super) fn sealed_secret_type() -> ResourceType {
    from_crd(&json!({"spec": {"group": "gitops-seal.dev", "scope": "Namespaced",
        "names": {"plural": "sealedsecrets", "singular": "sealedsecret", "kind": "SealedSecret"},
        "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "name": {"type": "string", "minLength": 3, "maxLength": 5},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}}
            }, "required": ["size"]},
            "status": {"type": "object", "properties": {
                "observedGeneration": {"type": "integer"},
                "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["type"],
                  "items": {"type": "object", "required": ["type", "status"], "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "reason": {"type": "string"}, "message": {"type": "string"},
                    "observedGeneration": {"type": "integer"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"}}}}}}
          }}}}]}}))
    .remove(0)
}

pub(super) fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "t"}, "type": "Opaque", "data": {"k": "MQ=="}})
}

pub(super) fn event() -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "db.18ecde72953663ff", "namespace": "transcripts2"},
      "eventTime": "2026-11-30T16:08:55.124917Z", "reportingController": "gitops-seal", "reportingInstance": "gitops-seal-6d4b9-x2x7q",
      "action": "Unseal", "reason": "DecryptFailed", "type": "Warning", "note": "no identity opens value password of SealedSecret db",
      "regarding": {"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "name": "db", "namespace": "transcripts2", "uid": "f0776645-4798-40c2-af4b-4e1f2b01151d"}})
}

pub(super) fn ev_rt() -> ResourceType {
    rt("events.k8s.io", "Event")
}
