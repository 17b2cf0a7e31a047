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
}

/// `original`, or with even odds something else: a moved ciphertext stays at its key, name
/// or namespace often enough that the "allowed" branch runs as often as the refused one.
fn same_or(
    original: String,
    other: impl Strategy<Value = String>,
) -> impl Strategy<Value = String> {
    prop_oneof![Just(original), other]
}

/// (k1, k2, n1, n2, s1, s2, scope, value), each second field biased towards the first.
#[allow(clippy::type_complexity)]
fn moves() -> impl Strategy<
    Value = (
        String,
        String,
        String,
        String,
        String,
        String,
        Scope,
        Vec<u8>,
    ),
> {
    (
        key(),
        dns(),
        dns(),
        scope(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_flat_map(|(k1, n1, s1, scope, value)| {
            (
                same_or(k1.clone(), key()),
                same_or(n1.clone(), dns()),
                same_or(s1.clone(), dns()),
            )
                .prop_map(move |(k2, n2, s2)| {
                    (
                        k1.clone(),
                        k2,
                        n1.clone(),
                        n2,
                        s1.clone(),
                        s2,
                        scope,
                        value.clone(),
                    )
                })
        })
}

#[test]
fn a_moved_ciphertext_is_refused_unless_its_scope_allows_it() {
    use std::cell::Cell;
    let (opened_count, refused_count) = (Cell::new(0usize), Cell::new(0usize));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    runner
        .run(&moves(), |(k1, k2, n1, n2, s1, s2, scope, value)| {
            let (ids, recipients) = identity();
            let plain = secret(
                n1.clone(),
                s1.clone(),
                BTreeMap::from([(k1.clone(), value.clone())]),
            );
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
                    opened_count.set(opened_count.get() + 1);
                }
                Err(e) => {
                    prop_assert!(!allowed, "an allowed value was refused: {}", e);
                    prop_assert!(matches!(e.kind, ErrorKind::ScopeMismatch { .. }), "{}", e);
                    prop_assert_eq!(e.reason(), "ScopeMismatch");
                    refused_count.set(refused_count.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    // Both branches ran: the property says something about each.
    assert!(opened_count.get() > 0, "no allowed move was generated");
    assert!(refused_count.get() > 0, "no refused move was generated");
}
