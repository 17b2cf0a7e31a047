//! The two views of one Event: kube-apiserver stores core/v1 Events and serves the same objects
//! as events.k8s.io/v1 (field names differ; see the events.k8s.io/v1 API reference's
//! `deprecated*` fields). Objects are stored in the form they were written in and converted
//! when read through the other group.

use serde_json::{json, Map, Value};

/// Field renames between events.k8s.io/v1 and core/v1.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Go struct order of events.k8s.io/v1 Event.
const EVENTS_V1_ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
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
];

/// Go struct order of core/v1 Event.
const CORE_V1_ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
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
];

fn reorder(obj: Map<String, Value>, order: &[&str]) -> Map<String, Value> {
    let mut obj = obj;
    let mut out = Map::new();
    for k in order {
        if let Some(v) = obj.shift_remove(*k) {
            out.insert((*k).to_string(), v);
        }
    }
    out.extend(obj);
    out
}

fn rename(obj: Map<String, Value>, to_core: bool) -> Map<String, Value> {
    obj.into_iter()
        .map(|(k, v)| {
            let renamed = RENAMES.iter().find_map(|(events, core)| {
                if to_core && k == *events {
                    Some(*core)
                } else if !to_core && k == *core {
                    Some(*events)
                } else {
                    None
                }
            });
            (renamed.map(str::to_string).unwrap_or(k), v)
        })
        .collect()
}

/// An Event (stored in either form) as `api_version` (`v1` or `events.k8s.io/v1`) shows it,
/// with the fields Go always writes (`source: {}`, null timestamps) and in struct order.
pub fn event_as(obj: &Value, api_version: &str) -> Value {
    let Some(o) = obj.as_object() else {
        return obj.clone();
    };
    let stored_core = o.get("apiVersion").and_then(Value::as_str) == Some("v1");
    let to_core = api_version == "v1";
    let mut m = if stored_core == to_core {
        o.clone()
    } else {
        rename(o.clone(), to_core)
    };
    m.insert("apiVersion".into(), json!(api_version));
    let (source, first, last, order) = if to_core {
        ("source", "firstTimestamp", "lastTimestamp", CORE_V1_ORDER)
    } else {
        (
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            EVENTS_V1_ORDER,
        )
    };
    m.entry(source).or_insert_with(|| json!({}));
    m.entry(first).or_insert(Value::Null);
    m.entry(last).or_insert(Value::Null);
    Value::Object(reorder(m, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// events-v1.json: the Recorder's event, and step 6's core/v1 view of it.
    #[test]
    fn the_core_view_of_an_events_v1_event_is_the_recorded_one() {
        let written = json!({"kind": "Event", "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "db.1", "namespace": "t"},
            "eventTime": "2026-11-30T16:08:55.124917Z", "reportingController": "gitops-seal",
            "reportingInstance": "gitops-seal-x", "action": "Unseal", "reason": "DecryptFailed",
            "regarding": {"kind": "SealedSecret", "name": "db"}, "note": "no identity opens value password",
            "type": "Warning", "series": {"count": 4, "lastObservedTime": "2026-11-30T16:08:57.154105Z"}});
        let core = event_as(&written, "v1");
        let keys: Vec<&str> = core
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "involvedObject",
                "reason",
                "message",
                "source",
                "firstTimestamp",
                "lastTimestamp",
                "type",
                "eventTime",
                "series",
                "action",
                "reportingComponent",
                "reportingInstance"
            ]
        );
        assert_eq!(core["source"], json!({}));
        assert_eq!(core["firstTimestamp"], Value::Null);
        assert_eq!(core["message"], written["note"]);

        let back = event_as(&written, "events.k8s.io/v1");
        let keys: Vec<&str> = back
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "eventTime",
                "series",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
                "regarding",
                "note",
                "type",
                "deprecatedSource",
                "deprecatedFirstTimestamp",
                "deprecatedLastTimestamp"
            ]
        );
        assert_eq!(event_as(&core, "events.k8s.io/v1"), back);
    }
}
