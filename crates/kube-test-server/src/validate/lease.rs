//! Leases.

use serde_json::Value;

use super::errors::{ErrType, FieldError};

pub(super) fn validate_lease(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    if let Some(d) = spec["leaseDurationSeconds"].as_i64() {
        if d <= 0 {
            errs.push(FieldError::new(
                ErrType::Invalid,
                "spec.leaseDurationSeconds",
                d.to_string(),
                "must be greater than 0",
            ));
        }
    }
    if let Some(t) = spec["leaseTransitions"].as_i64() {
        if t < 0 {
            errs.push(FieldError::new(
                ErrType::Invalid,
                "spec.leaseTransitions",
                t.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::rt;
    use super::super::{validate, Op};

    #[test]
    fn lease_spec_rules() {
        let lease = rt("coordination.k8s.io", "Lease");
        let l = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}});
        let err = validate(&lease, &l, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        assert_eq!(err.body["details"]["group"], "coordination.k8s.io");
    }
}
