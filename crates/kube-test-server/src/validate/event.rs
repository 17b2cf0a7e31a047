//! Events, core/v1 and events.k8s.io/v1, validated as the internal core Event.

use serde_json::{json, Map, Value};

use super::errors::{str_at, ErrType, FieldError};
use crate::registry::ResourceType;
use crate::selectors::{go_quote, qualified_name_errors};

/// An Event seen through the internal (core) field names, whichever API it was written through.
struct CoreEvent<'a> {
    namespace: &'a str,
    involved: &'a Value,
    reason: &'a Value,
    message: &'a Value,
    source: &'a Value,
    first: &'a Value,
    last: &'a Value,
    count: &'a Value,
    event_type: &'a Value,
    event_time: &'a Value,
    series: &'a Value,
    action: &'a Value,
    reporting_controller: &'a Value,
    reporting_instance: &'a Value,
}

impl<'a> CoreEvent<'a> {
    fn of(v1: bool, e: &'a Value) -> Self {
        let f = |core: &str, events: &str| if v1 { &e[core] } else { &e[events] };
        CoreEvent {
            namespace: e["metadata"]["namespace"].as_str().unwrap_or_default(),
            involved: f("involvedObject", "regarding"),
            reason: &e["reason"],
            message: f("message", "note"),
            source: f("source", "deprecatedSource"),
            first: f("firstTimestamp", "deprecatedFirstTimestamp"),
            last: f("lastTimestamp", "deprecatedLastTimestamp"),
            count: f("count", "deprecatedCount"),
            event_type: &e["type"],
            event_time: &e["eventTime"],
            series: &e["series"],
            action: &e["action"],
            reporting_controller: f("reportingComponent", "reportingController"),
            reporting_instance: &e["reportingInstance"],
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn is_zero_time(v: &Value) -> bool {
    s(v).is_empty()
}

/// Go's `%#v` of a core.ObjectReference.
fn go_object_reference(v: &Value) -> String {
    format!(
        "core.ObjectReference{{Kind:{}, Namespace:{}, Name:{}, UID:{}, APIVersion:{}, ResourceVersion:{}, FieldPath:{}}}",
        go_quote(str_at(v, "kind")),
        go_quote(str_at(v, "namespace")),
        go_quote(str_at(v, "name")),
        go_quote(str_at(v, "uid")),
        go_quote(str_at(v, "apiVersion")),
        go_quote(str_at(v, "resourceVersion")),
        go_quote(str_at(v, "fieldPath")),
    )
}

/// Go's `String()` of a metav1.Time / MicroTime (`2006-01-02 15:04:05.999999999 -0700 MST`).
fn go_time_string(v: &Value) -> String {
    let t = s(v);
    if t.is_empty() {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    }
    let t = t.trim_end_matches('Z');
    let (date, time) = t.split_once('T').unwrap_or((t, ""));
    let time = if time.contains('.') {
        time.trim_end_matches('0').trim_end_matches('.')
    } else {
        time
    };
    format!("{date} {time} +0000 UTC")
}

/// Events through either API, validated as the internal core Event (events.k8s.io/v1 adds its
/// own create and update rules).
pub(super) fn validate_event(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
    errs: &mut Vec<FieldError>,
) {
    let v1 = rt.group.is_empty();
    let e = CoreEvent::of(v1, obj);
    legacy_validate_event(v1, &e, errs);
    if v1 {
        return;
    }
    match old {
        None => validate_v1_event_create(&e, errs),
        Some(old) => validate_v1_event_update(&e, &CoreEvent::of(v1, old), errs),
    }
}

/// events.k8s.io/v1 rules on create: eventTime and a valid type required, the deprecated
/// fields unset.
fn validate_v1_event_create(e: &CoreEvent, errs: &mut Vec<FieldError>) {
    validate_v1_event_series(e, errs);
    if is_zero_time(e.event_time) {
        errs.push(FieldError::required("eventTime", ""));
    }
    let ty = s(e.event_type);
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid_str(
            "type",
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    if !is_zero_time(e.first) {
        errs.push(FieldError::invalid_str(
            "firstTimestamp",
            "",
            "needs to be unset",
        ));
    }
    if !is_zero_time(e.last) {
        errs.push(FieldError::invalid_str(
            "lastTimestamp",
            "",
            "needs to be unset",
        ));
    }
    if e.count.as_i64().unwrap_or(0) != 0 {
        errs.push(FieldError::invalid_str("count", "", "needs to be unset"));
    }
    if !str_at(e.source, "component").is_empty() || !str_at(e.source, "host").is_empty() {
        errs.push(FieldError::invalid_str("source", "", "needs to be unset"));
    }
}

/// events.k8s.io/v1 rules on update: everything but the series is immutable.
fn validate_v1_event_update(e: &CoreEvent, o: &CoreEvent, errs: &mut Vec<FieldError>) {
    let norm = |v: &Value| if v.is_null() { Value::Null } else { v.clone() };
    if norm(e.series) != norm(o.series) {
        validate_v1_event_series(e, errs);
    }
    let immutable =
        |errs: &mut Vec<FieldError>, path: &str, new: &Value, old: &Value, shown: String| {
            let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(Map::is_empty);
            if !(new == old || empty(new) && empty(old)) {
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    shown,
                    "field is immutable",
                ));
            }
        };
    let q = |v: &Value| go_quote(s(v));
    immutable(
        errs,
        "involvedObject",
        e.involved,
        o.involved,
        go_object_reference(e.involved),
    );
    immutable(errs, "reason", e.reason, o.reason, q(e.reason));
    immutable(errs, "message", e.message, o.message, q(e.message));
    immutable(
        errs,
        "source",
        e.source,
        o.source,
        format!(
            "core.EventSource{{Component:{}, Host:{}}}",
            go_quote(str_at(e.source, "component")),
            go_quote(str_at(e.source, "host"))
        ),
    );
    immutable(
        errs,
        "firstTimestamp",
        e.first,
        o.first,
        go_time_string(e.first),
    );
    immutable(
        errs,
        "lastTimestamp",
        e.last,
        o.last,
        go_time_string(e.last),
    );
    let count = |v: &Value| json!(v.as_i64().unwrap_or(0));
    immutable(
        errs,
        "count",
        &count(e.count),
        &count(o.count),
        e.count.as_i64().unwrap_or(0).to_string(),
    );
    immutable(errs, "reason", e.reason, o.reason, q(e.reason));
    immutable(errs, "type", e.event_type, o.event_type, q(e.event_type));
    if s(e.event_time) != s(o.event_time) {
        errs.push(FieldError::new(
            ErrType::Invalid,
            "eventTime",
            go_time_string(e.event_time),
            "field is immutable",
        ));
    }
}

fn validate_v1_event_series(e: &CoreEvent, errs: &mut Vec<FieldError>) {
    if e.series.is_object() {
        if e.series["count"].as_i64().unwrap_or(0) < 2 {
            errs.push(FieldError::invalid_str(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if is_zero_time(&e.series["lastObservedTime"]) {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
}

fn legacy_validate_event(v1: bool, e: &CoreEvent, errs: &mut Vec<FieldError>) {
    let involved_ns = str_at(e.involved, "namespace");
    let mismatch = |errs: &mut Vec<FieldError>| {
        errs.push(FieldError::invalid_str(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ))
    };
    if is_zero_time(e.event_time) {
        if involved_ns.is_empty() {
            if !e.namespace.is_empty() && e.namespace != "default" {
                mismatch(errs);
            }
        } else if e.namespace != involved_ns {
            mismatch(errs);
        }
    } else {
        if involved_ns.is_empty() && e.namespace != "default" && e.namespace != "kube-system" {
            mismatch(errs);
        }
        let rc_field = if v1 { "source" } else { "reportingController" };
        let rc = s(e.reporting_controller);
        if rc.is_empty() {
            errs.push(FieldError::required(rc_field, ""));
        }
        for m in qualified_name_errors(rc) {
            errs.push(FieldError::invalid_str(rc_field, rc, m));
        }
        let ri = s(e.reporting_instance);
        if ri.is_empty() {
            errs.push(FieldError::required("reportingInstance", ""));
        }
        if ri.len() > 128 {
            errs.push(FieldError::invalid_str(
                "reportingInstance",
                "",
                "can have at most 128 characters",
            ));
        }
        let action = s(e.action);
        if action.is_empty() {
            errs.push(FieldError::required("action", ""));
        }
        if action.len() > 128 {
            errs.push(FieldError::invalid_str(
                "action",
                "",
                "can have at most 128 characters",
            ));
        }
    }
    if s(e.reason).len() > 128 {
        errs.push(FieldError::invalid_str(
            "reason",
            "",
            "can have at most 128 characters",
        ));
    }
    if s(e.message).len() > 1024 {
        errs.push(FieldError::invalid_str(
            "message",
            "",
            "can have at most 1024 characters",
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{ev_rt, event};
    use super::super::{check_decode, validate, Op};

    /// events-v1.json steps 0–2, 5: the Recorder's event and its series patches are accepted.
    #[test]
    fn event_v1_accepted() {
        let e = event();
        assert!(validate(&ev_rt(), &e, None, Op::Create).is_ok());
        let mut s2 = e.clone();
        s2["series"] = json!({"count": 2, "lastObservedTime": "2026-11-30T16:08:56.143904Z"});
        assert!(validate(&ev_rt(), &s2, Some(&e), Op::MergePatch).is_ok());
        let mut s4 = s2.clone();
        s4["series"]["count"] = json!(4);
        assert!(validate(&ev_rt(), &s4, Some(&s2), Op::MergePatch).is_ok());
        assert!(check_decode(&ev_rt(), &s4, Op::MergePatch, None).is_ok());
    }

    /// events-v1.json step 3: changing `note` is 422 on field `message`.
    #[test]
    fn event_note_immutable_as_recorded() {
        let old = event();
        let mut new = old.clone();
        new["note"] = json!("a different note");
        let err = validate(&ev_rt(), &new, Some(&old), Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "Event \"db.18ecde72953663ff\" is invalid: message: Invalid value: \"a different note\": field is immutable",
              "reason": "Invalid", "details": {"name": "db.18ecde72953663ff", "kind": "Event", "causes": [{"reason": "FieldValueInvalid",
              "message": "Invalid value: \"a different note\": field is immutable", "field": "message"}]}, "code": 422})
        );
    }

    /// events-v1.json steps 4 and 8: series count below 2; series without lastObservedTime.
    #[test]
    fn event_series_as_recorded() {
        let mut old = event();
        old["series"] = json!({"count": 3, "lastObservedTime": "2026-11-30T16:08:57.154105Z"});
        let mut new = old.clone();
        new["series"] = json!({"count": 1, "lastObservedTime": "2026-11-30T16:08:58.178810Z"});
        let err = validate(&ev_rt(), &new, Some(&old), Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Event \"db.18ecde72953663ff\" is invalid: series.count: Invalid value: \"\": should be at least 2"
        );
        assert_eq!(
            err.body["details"]["causes"],
            json!([{"reason": "FieldValueInvalid", "message": "Invalid value: \"\": should be at least 2", "field": "series.count"}])
        );
        let old = event();
        let mut new = old.clone();
        new["series"] = json!({"count": 2});
        let err = validate(&ev_rt(), &new, Some(&old), Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Event \"db.18ecde72953663ff\" is invalid: series.lastObservedTime: Required value"
        );
        assert_eq!(
            err.body["details"]["causes"],
            json!([{"reason": "FieldValueRequired", "message": "Required value", "field": "series.lastObservedTime"}])
        );
    }

    /// events-v1.json steps 10 and 11: missing eventTime; missing reportingController and action.
    #[test]
    fn event_create_required_as_recorded() {
        let mut e = event();
        e["metadata"]["name"] = json!("db.18ecde72953663ffc");
        e.as_object_mut().unwrap().remove("eventTime");
        let err = validate(&ev_rt(), &e, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Event \"db.18ecde72953663ffc\" is invalid: eventTime: Required value"
        );
        let mut e = event();
        e["metadata"]["name"] = json!("db.18ecde72953663ffd");
        e.as_object_mut().unwrap().remove("reportingController");
        e.as_object_mut().unwrap().remove("action");
        let err = validate(&ev_rt(), &e, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Event \"db.18ecde72953663ffd\" is invalid: [reportingController: Required value, reportingController: Invalid value: \"\": name part must be non-empty, reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), action: Required value]", "reason": "Invalid", "details": {"name": "db.18ecde72953663ffd", "kind": "Event", "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "reportingController"}, {"reason": "FieldValueInvalid", "message": "Invalid value: \"\": name part must be non-empty", "field": "reportingController"}, {"reason": "FieldValueInvalid", "message": "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')", "field": "reportingController"}, {"reason": "FieldValueRequired", "message": "Required value", "field": "action"}]}, "code": 422})
        );
    }
}
