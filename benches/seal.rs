//! Core throughput: sealing and unsealing one value for 1, 2 and 5 recipients, and sealing a
//! whole file of Secrets. Run with `cargo bench`; figures are in docs/PERFORMANCE.md.

use divan::Bencher;
use gitops_seal::core::binding::{Binding, Scope};
use gitops_seal::core::keys::parse_identity_file;
use gitops_seal::core::seal::{seal_value, unseal_value};
use gitops_seal::core::{Identity, Recipient};
use gitops_seal::ops::{self, SealSettings};

fn main() {
    divan::main();
}

fn keys(n: usize) -> (Vec<Identity>, Vec<Recipient>) {
    // Classical keys: the figures in docs/PERFORMANCE.md per recipient are X25519 stanzas.
    let ids: Vec<Identity> = (0..n).map(|_| Identity::generate_x25519()).collect();
    let rs = ids.iter().map(|i| i.to_recipient().unwrap()).collect();
    (ids, rs)
}

fn binding() -> Binding {
    Binding::new(Scope::Strict, "Opaque", Some("prod"), "db", "password").unwrap()
}

#[divan::bench(args = [1, 2, 5])]
fn seal_one_value(bencher: Bencher, recipients: usize) {
    let (_, rs) = keys(recipients);
    let b = binding();
    let value = vec![b'x'; 256];
    bencher.bench(|| seal_value(&rs, &b, divan::black_box(&value)).unwrap());
}

#[divan::bench(args = [1, 2, 5])]
fn unseal_one_value(bencher: Bencher, recipients: usize) {
    let (ids, rs) = keys(recipients);
    let b = binding();
    let ct = seal_value(&rs, &b, &[b'x'; 256]).unwrap();
    // The identity is the last recipient. After the first value it has learnt its stanza's
    // position, as it does after the first value of a file: one stanza is tried.
    let last = vec![ids.into_iter().last().unwrap()];
    bencher.bench(|| unseal_value(&last, &b, divan::black_box(&ct)).unwrap());
}

/// The first value an identity opens, as the last of `recipients`: every stanza is tried.
#[divan::bench(args = [1, 2, 5])]
fn unseal_first_value(bencher: Bencher, recipients: usize) {
    let (ids, rs) = keys(recipients);
    let b = binding();
    let ct = seal_value(&rs, &b, &[b'x'; 256]).unwrap();
    let file = ids.last().unwrap().to_identity_file("bench").unwrap();
    bencher
        .with_inputs(|| parse_identity_file(&file).unwrap())
        .bench_values(|fresh| unseal_value(&fresh, &b, divan::black_box(&ct)).unwrap());
}

#[divan::bench]
fn encrypt_file_of_20_secrets(bencher: Bencher) {
    let (_, rs) = keys(2);
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s{i}, namespace: prod}}\nstringData:\n  a: value-{i}\n  b: another-{i}\n"
        ));
    }
    let settings = SealSettings {
        recipients: rs,
        ..SealSettings::default()
    };
    bencher.bench(|| ops::encrypt(text.as_bytes(), &settings, None).unwrap());
}

/// During a rotation (issue 27): the controller holds `keys` post-quantum keys in attribution
/// order (newest first) and opens a value sealed for the newest key only. Attribution records
/// the key that opens; keys after it are never tried.
#[divan::bench(args = [1, 2, 3])]
fn rotation_open_for_the_newest_key(bencher: Bencher, keys: usize) {
    rotation_open(bencher, keys, 0);
}

/// As above, for a value still sealed only for the oldest key: one failed try per newer key,
/// as age itself would spend with the keys in that order.
#[divan::bench(args = [1, 2, 3])]
fn rotation_open_for_the_oldest_key(bencher: Bencher, keys: usize) {
    rotation_open(bencher, keys, keys - 1);
}

fn rotation_open(bencher: Bencher, keys: usize, sealed_for: usize) {
    use gitops_seal::core::keys::KeyKind;
    use gitops_seal::core::seal::unseal_value_attributed;
    let ids: Vec<Identity> = (0..keys)
        .map(|_| Identity::generate_kind(KeyKind::Pq))
        .collect();
    let b = binding();
    let to = [ids[sealed_for].to_recipient().unwrap()];
    let ct = seal_value(&to, &b, &[b'x'; 256]).unwrap();
    bencher.bench(|| {
        let (index, _) = unseal_value_attributed(&ids, &b, divan::black_box(&ct)).unwrap();
        assert_eq!(index, sealed_for);
    });
}
