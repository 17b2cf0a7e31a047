//! Property tests of the core: arbitrary values and key names round-trip, and a ciphertext
//! moved anywhere its scope does not allow is refused.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use zeroize::Zeroizing;

use gitops_seal::core::{Identity, PlainSecret, Recipient, Scope, SealedSecret};
use gitops_seal::ErrorKind;

fn identity() -> &'static (Vec<Identity>, Vec<Recipient>) {
    static ID: OnceLock<(Vec<Identity>, Vec<Recipient>)> = OnceLock::new();
    ID.get_or_init(|| {
        let id = Identity::generate();
        let r = id.to_recipient().unwrap();
        (vec![id], vec![r])
    })
}

fn key() -> impl Strategy<Value = String> {
    "[-._a-zA-Z0-9]{1,40}".prop_filter("not . or ..", |k| k != "." && k != "..")
}

fn dns() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}"
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Strict),
        Just(Scope::Namespace),
        Just(Scope::Cluster)
    ]
}

fn secret(name: String, namespace: String, data: BTreeMap<String, Vec<u8>>) -> PlainSecret {
    PlainSecret {
        name,
        namespace: Some(namespace),
        secret_type: "Opaque".into(),
        data: data
            .into_iter()
            .map(|(k, v)| (k, Zeroizing::new(v)))
            .collect(),
        ..PlainSecret::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_under_any_key_round_trip(
        data in prop::collection::btree_map(key(), prop::collection::vec(any::<u8>(), 0..300), 1..4),
        name in dns(), ns in dns(), scope in scope(),
    ) {
        let (ids, recipients) = identity();
        let plain = secret(name, ns, data);
        let sealed = SealedSecret::seal(&plain, recipients, scope, None, None).unwrap();
        // Through the text format and back, as a file would go.
        let text = sealed.render(false);
        let docs = gitops_seal::core::yaml::split_documents(&text);
        let parsed = SealedSecret::parse(&docs[0]).unwrap();
        prop_assert_eq!(&parsed, &sealed);
        let opened = parsed.unseal(ids, None).unwrap();
        prop_assert_eq!(opened.data, plain.data);
    }

    #[test]
    fn a_moved_ciphertext_is_refused_unless_its_scope_allows_it(
        k1 in key(), k2 in key(), n1 in dns(), n2 in dns(), s1 in dns(), s2 in dns(),
        scope in scope(), value in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (ids, recipients) = identity();
        let plain = secret(n1.clone(), s1.clone(), BTreeMap::from([(k1.clone(), value.clone())]));
        let sealed = SealedSecret::seal(&plain, recipients, scope, None, None).unwrap();
        let ct = sealed.encrypted_data[&k1].clone();
        let mut moved = sealed.clone();
        moved.name = n2.clone();
        moved.namespace = Some(s2.clone());
        moved.encrypted_data = BTreeMap::from([(k2.clone(), ct)]);
        let allowed = k1 == k2
            && (scope == Scope::Cluster || s1 == s2)
            && (scope != Scope::Strict || n1 == n2);
        match moved.unseal(ids, None) {
            Ok(opened) => {
                prop_assert!(allowed, "a moved value opened");
                prop_assert_eq!(&opened.data[&k2][..], &value[..]);
            }
            Err(e) => {
                prop_assert!(!allowed, "an allowed value was refused: {}", e);
                prop_assert!(matches!(e.kind, ErrorKind::ScopeMismatch { .. }), "{}", e);
                prop_assert_eq!(e.reason(), "ScopeMismatch");
            }
        }
    }
}
