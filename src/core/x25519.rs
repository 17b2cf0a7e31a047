//! age's X25519 recipient and identity (<https://age-encryption.org/v1>, "The X25519
//! recipient type"), producing and accepting exactly the stanzas of the age crate's
//! `age::x25519`, with two costs taken out:
//!
//! - Sealing: the shared secret `X25519(e, recipient)` is computed with a table of the
//!   recipient's point, built once per recipient key after [`TABLE_AFTER_USES`] stanzas,
//!   instead of a Montgomery ladder per stanza (a fixed-base multiplication is ~3× cheaper
//!   than the ladder; the table costs ~20 ladders to build and is ~30 KB).
//! - Opening: the identity's public key (part of the HKDF salt) is computed once, not for
//!   every stanza tried.
//!
//! Parsing, printing and generating keys stay with the age crate; the HKDF and
//! ChaCha20-Poly1305 steps are age-core's own functions, the ones age calls.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{aead_decrypt, aead_encrypt, bech32_decode, hkdf};
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use curve25519_dalek::edwards::{EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::traits::BasepointTable;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use rand::Rng;
use zeroize::Zeroizing;

/// The stanza's first argument ("X25519 recipient stanza").
pub const TAG: &str = "X25519";
/// The HKDF info ("X25519 recipient stanza": `info = "age-encryption.org/v1/X25519"`).
const LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// The body is the 16-byte file key sealed with ChaCha20-Poly1305 (and its 16-byte tag).
const BODY_BYTES: usize = FILE_KEY_BYTES + 16;
/// Stanzas sealed for one recipient key with the plain ladder before its table is built: the
/// table costs about as much as 20 ladders, and each use of it saves about two thirds of
/// one, so a key used fewer times than this never pays for a table (and a key used many
/// times pays at most about twice the ideal).
pub const TABLE_AFTER_USES: usize = 32;

/// An age X25519 recipient whose stanzas are age's, byte for byte in form and exactly as
/// age computes them. Clones share the use count and the table.
#[derive(Clone)]
pub struct X25519Recipient {
    // age 0.13 deprecates its classical recipient to steer new encryption to `age::pq`; this
    // type exists to keep sealing for the X25519 keys that repositories and clusters already
    // use (a classical rule keeps working unchanged), so it uses it knowingly.
    #[allow(deprecated)]
    age: age::x25519::Recipient,
    /// The recipient's 32 bytes as encoded (the HKDF salt uses them as they are).
    key: [u8; 32],
    fast: Arc<Fast>,
}

#[derive(Default)]
struct Fast {
    uses: AtomicUsize,
    /// `None` inside: the key has no Edwards form (a point of the twist), so the ladder it is.
    table: OnceLock<Option<EdwardsBasepointTable>>,
}

impl X25519Recipient {
    #[allow(deprecated)] // The classical recipient, kept for existing keys (see the field).
    pub fn new(age: age::x25519::Recipient) -> Self {
        let key = recipient_bytes(&age);
        X25519Recipient {
            age,
            key,
            fast: Arc::default(),
        }
    }

    /// Whether the key is a point of small order (on the curve or its twist): then
    /// `X25519(k, key)` is all zeros for every clamped `k` (a multiple of the cofactor 8, which
    /// kills every such point), so no secret can be shared with it.
    pub fn is_low_order(&self) -> bool {
        is_low_order(&self.key)
    }

    /// `shared secret = X25519(ephemeral secret, recipient)` ("X25519 recipient stanza"),
    /// through the recipient's table once it is worth building.
    fn shared_secret(&self, e: &[u8; 32]) -> [u8; 32] {
        let table = match self.fast.table.get() {
            Some(t) => t.as_ref(),
            None if self.fast.uses.fetch_add(1, Ordering::Relaxed) >= TABLE_AFTER_USES => self
                .fast
                .table
                .get_or_init(|| point_table(&self.key))
                .as_ref(),
            None => None,
        };
        shared_secret(&self.key, table, e)
    }

    /// One stanza for `file_key` with the ephemeral secret `e`.
    fn wrap_with(&self, file_key: &FileKey, e: &[u8; 32]) -> Result<Stanza, age::EncryptError> {
        // ephemeral share = X25519(ephemeral secret, basepoint): the fixed-base table of
        // the Edwards form, as x25519-dalek computes public keys.
        let share = EdwardsPoint::mul_base_clamped(*e)
            .to_montgomery()
            .to_bytes();
        let shared = Zeroizing::new(self.shared_secret(e));
        // A low-order recipient key gives the all-zero shared secret whatever `e` is. age
        // panics there (it blames the RNG); this refuses the key.
        if is_all_zero(&shared) {
            return Err(age::EncryptError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the X25519 recipient {} is a low-order point: no secret can be shared with it",
                    self.age
                ),
            )));
        }
        // salt = ephemeral share || recipient
        let mut salt = [0; 64];
        salt[..32].copy_from_slice(&share);
        salt[32..].copy_from_slice(&self.key);
        // wrap key = HKDF-SHA-256(ikm = shared secret, salt, info)
        let wrap_key = Zeroizing::new(hkdf(&salt, LABEL, &shared[..]));
        // body = ChaCha20-Poly1305(key = wrap key, plaintext = file key), zero nonce
        let body = aead_encrypt(&wrap_key, file_key.expose_secret());
        Ok(Stanza {
            tag: TAG.to_owned(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(share)],
            body,
        })
    }
}

impl age::Recipient for X25519Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        // ephemeral secret = read(CSPRNG, 32): a new one for each stanza and each file, from
        // the OS RNG, as age's `UnwrapErr(SysRng)` (rand 0.10's OS generator, which panics
        // rather than return a key from a failed read).
        let mut e = Zeroizing::new([0u8; 32]);
        UnwrapErr(SysRng).fill_bytes(&mut e[..]);
        // No labels: age's X25519 recipient has none.
        Ok((vec![self.wrap_with(file_key, &e)?], HashSet::new()))
    }
}

impl fmt::Display for X25519Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.age, f)
    }
}

/// An age X25519 identity that opens exactly the stanzas age's opens, with the same outcome
/// for each, and keeps its public key.
pub struct X25519Identity {
    /// For printing the identity and its recipient (keygen, `recipient`). It holds the same
    /// secret, as x25519-dalek's `StaticSecret`, which is also wiped on drop.
    age: age::x25519::Identity,
    /// The secret's 32 bytes, wiped on drop.
    secret: Zeroizing<[u8; 32]>,
    /// `recipient = X25519(identity, basepoint)`, as age computes it.
    public: [u8; 32],
}

impl X25519Identity {
    pub fn new(age: age::x25519::Identity) -> Self {
        let public = recipient_bytes(&age.to_public());
        let secret = bech32_data(age.to_string().expose_secret())
            .expect("age prints its identities as Bech32 of 32 bytes");
        X25519Identity {
            age,
            secret,
            public,
        }
    }

    /// The age crate's identity for the same key.
    pub fn as_age(&self) -> &age::x25519::Identity {
        &self.age
    }
}

impl age::Identity for X25519Identity {
    /// age's `x25519::Identity::unwrap_stanza`, check for check and outcome for outcome.
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        // "MUST ignore any stanza that does not have `X25519` as the first argument".
        if stanza.tag != TAG {
            return None;
        }
        // "MUST otherwise reject any stanza that has more or less than two arguments, or
        // where the second argument is not a canonical base64 encoding of a 32-byte value."
        let share = match &stanza.args[..] {
            [arg] => match base64_32(arg) {
                Some(share) => share,
                None => return Some(Err(age::DecryptError::InvalidHeader)),
            },
            _ => return Some(Err(age::DecryptError::InvalidHeader)),
        };
        // "MUST check that the body length is exactly 32 bytes before attempting to decrypt".
        if stanza.body.len() != BODY_BYTES {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        // shared secret = X25519(identity, ephemeral share): the ladder, as age's.
        let shared = Zeroizing::new(MontgomeryPoint(share).mul_clamped(*self.secret).to_bytes());
        // "If the shared secret is all 0x00 bytes, the identity implementation MUST abort."
        if is_all_zero(&shared) {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        let mut salt = [0; 64];
        salt[..32].copy_from_slice(&share);
        salt[32..].copy_from_slice(&self.public);
        let wrap_key = Zeroizing::new(hkdf(&salt, LABEL, &shared[..]));
        // A body that does not open is someone else's stanza: not an error (age's words: "we
        // cannot tell which key matches a particular stanza").
        aead_decrypt(&wrap_key, FILE_KEY_BYTES, &stanza.body)
            .ok()
            .map(|plain| {
                // `plain` is wiped on drop (age-core 0.13 returns it in a SecretBox).
                Ok(FileKey::init_with_mut(|file_key| {
                    file_key.copy_from_slice(plain.expose_secret());
                }))
            })
    }
}

/// `X25519(e, u)` (RFC 7748 section 5) for a recipient `u` with the table of its Edwards
/// form, else with the ladder.
///
/// The table multiplies by the clamped scalar itself, unreduced: for a point with a torsion
/// component, reducing modulo ℓ would give other bytes. A Montgomery u has two Edwards
/// points, ±P, and k·(−P) = −(k·P) has the same u, so either sign serves. Constant time in
/// `e`, as the library's table and ladder are.
fn shared_secret(u: &[u8; 32], table: Option<&EdwardsBasepointTable>, e: &[u8; 32]) -> [u8; 32] {
    match table {
        Some(table) => table.mul_base_clamped(*e).to_montgomery().to_bytes(),
        None => MontgomeryPoint(*u).mul_clamped(*e).to_bytes(),
    }
}

/// The table of `u`'s Edwards point, if it has one (points of the twist do not).
fn point_table(u: &[u8; 32]) -> Option<EdwardsBasepointTable> {
    MontgomeryPoint(*u)
        .to_edwards(0)
        .map(|p| EdwardsBasepointTable::create(&p))
}

/// age's `base64_arg::<_, 32, 33>`: canonical unpadded base64 of exactly 32 bytes (the
/// spec's "Conventions": decoders MUST reject non-canonical encodings and padding).
fn base64_32(arg: &str) -> Option<[u8; 32]> {
    let mut buf = [0; 33];
    match BASE64_STANDARD_NO_PAD.decode_slice(arg, &mut buf) {
        Ok(32) => Some(buf[..32].try_into().expect("32 bytes")),
        _ => None,
    }
}

/// The u-coordinates of the points of small order on Curve25519 and its twist, with the
/// non-canonical encodings of 0 and 1 (libsodium's `has_small_order` list): 0 (order 2 on
/// both), 1 (order 4), the two of order 8, p − 1 (order 4 on the twist), p and p + 1. X25519
/// ignores the top bit, so it is cleared before comparing. The test checks these against the
/// ladder and curve25519-dalek's eight-torsion points.
const LOW_ORDER: [[u8; 32]; 7] = {
    let mut p_minus_1 = [0xff; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut p = p_minus_1;
    p[0] = 0xed;
    let mut p_plus_1 = p_minus_1;
    p_plus_1[0] = 0xee;
    let mut one = [0; 32];
    one[0] = 1;
    [
        [0; 32],
        one,
        [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ],
        [
            0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83,
            0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd,
            0xd0, 0x9f, 0x11, 0x57,
        ],
        p_minus_1,
        p,
        p_plus_1,
    ]
};

fn is_low_order(key: &[u8; 32]) -> bool {
    let mut u = *key;
    u[31] &= 0x7f;
    LOW_ORDER.contains(&u)
}

fn is_all_zero(bytes: &[u8; 32]) -> bool {
    // No early exit, as age's check (only whether the secret is zero is revealed).
    bytes.iter().fold(0, |acc, b| acc | b) == 0
}

/// The 32 bytes of a Bech32 string age printed (an `age1...` recipient or an
/// `AGE-SECRET-KEY-1...` identity).
fn bech32_data(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    bech32_decode(
        s,
        |_| (),
        |_| Ok(()),
        |_, bytes| {
            let mut out = Zeroizing::new([0u8; 32]);
            let mut n = 0;
            for b in bytes {
                *out.get_mut(n).ok_or(())? = b;
                n += 1;
            }
            (n == 32).then_some(out).ok_or(())
        },
    )
    .ok()
}

#[allow(deprecated)] // The classical recipient, kept for existing keys (see X25519Recipient).
fn recipient_bytes(r: &age::x25519::Recipient) -> [u8; 32] {
    *bech32_data(&r.to_string()).expect("age prints its recipients as Bech32 of 32 bytes")
}

#[cfg(test)]
// The tests compare with age's classical X25519 types, which age 0.13 deprecates.
#[allow(deprecated)]
mod tests {
    use super::*;
    use age::{Identity as _, Recipient as _};
    use curve25519_dalek::constants::EIGHT_TORSION;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn file_key(b: u8) -> FileKey {
        FileKey::new(Box::new([b; 16]))
    }

    /// The age spec's steps, with x25519-dalek's X25519 as age uses it.
    fn reference_stanza(recipient: &[u8; 32], e: &[u8; 32], file_key: &FileKey) -> Stanza {
        let esk = x25519_dalek::StaticSecret::from(*e);
        let share = x25519_dalek::PublicKey::from(&esk);
        let shared = esk.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient));
        let mut salt = [0; 64];
        salt[..32].copy_from_slice(share.as_bytes());
        salt[32..].copy_from_slice(recipient);
        let key = hkdf(&salt, LABEL, shared.as_bytes());
        Stanza {
            tag: "X25519".into(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(share.as_bytes())],
            body: aead_encrypt(&key, file_key.expose_secret()),
        }
    }

    fn recipient_of(u: [u8; 32]) -> X25519Recipient {
        let text = age_core::primitives::bech32_encode(bech32::Hrp::parse_unchecked("age"), &u);
        X25519Recipient::new(age::x25519::Recipient::from_str(&text).unwrap())
    }

    fn identity_of(secret: [u8; 32]) -> age::x25519::Identity {
        let hrp = bech32::Hrp::parse_unchecked("AGE-SECRET-KEY-");
        let text = age_core::primitives::bech32_encode(hrp, &secret).to_uppercase();
        age::x25519::Identity::from_str(&text).unwrap()
    }

    fn ladder(u: &[u8; 32], e: &[u8; 32]) -> [u8; 32] {
        MontgomeryPoint(*u).mul_clamped(*e).to_bytes()
    }

    fn same_stanza(a: &Stanza, b: &Stanza) -> bool {
        a.tag == b.tag && a.args == b.args && a.body == b.body
    }

    fn random_point() -> EdwardsPoint {
        let mut k = [0u8; 32];
        UnwrapErr(SysRng).fill_bytes(&mut k);
        EdwardsPoint::mul_base_clamped(k)
    }

    #[test]
    fn the_table_gives_the_ladders_bytes_for_points_with_torsion() {
        for t in EIGHT_TORSION.iter() {
            let u = (random_point() + t).to_montgomery().to_bytes();
            let table = point_table(&u).expect("a point of the curve has an Edwards form");
            // Both signs of the Edwards point.
            let minus = EdwardsBasepointTable::create(&MontgomeryPoint(u).to_edwards(1).unwrap());
            for _ in 0..4 {
                let mut e = [0u8; 32];
                UnwrapErr(SysRng).fill_bytes(&mut e);
                let want = ladder(&u, &e);
                assert_eq!(shared_secret(&u, Some(&table), &e), want);
                assert_eq!(shared_secret(&u, Some(&minus), &e), want);
            }
        }
    }

    #[test]
    fn low_order_keys_are_refused_not_a_panic() {
        let mut keys: Vec<[u8; 32]> = EIGHT_TORSION
            .iter()
            .map(|t| t.to_montgomery().to_bytes())
            .collect();
        // u = p - 1 (no Edwards form) and u = p (non-canonical 0), and 0 with the top bit set.
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let mut p = p_minus_1;
        p[0] = 0xed;
        let mut zero_high = [0; 32];
        zero_high[31] = 0x80;
        keys.extend([p_minus_1, p, zero_high]);
        for u in keys {
            let r = recipient_of(u);
            assert!(r.is_low_order(), "{u:?}");
            for _ in 0..=TABLE_AFTER_USES + 1 {
                assert!(r.wrap_file_key(&file_key(1)).is_err(), "{u:?}");
            }
            assert!(is_all_zero(&ladder(&u, &[9; 32])));
        }
    }

    #[test]
    fn the_low_order_list_is_what_the_ladder_and_the_torsion_points_say() {
        for u in LOW_ORDER {
            for top in [0, 0x80] {
                let mut key = u;
                key[31] |= top;
                assert!(is_low_order(&key), "{key:?}");
                assert!(is_all_zero(&ladder(&key, &[0x55; 32])), "{key:?}");
            }
        }
        for t in EIGHT_TORSION.iter() {
            assert!(is_low_order(&t.to_montgomery().to_bytes()));
        }
    }

    #[test]
    fn ordinary_keys_are_not_low_order() {
        for _ in 0..16 {
            assert!(!recipient_of(random_point().to_montgomery().to_bytes()).is_low_order());
        }
        // A point of the twist (no Edwards form) that is not of small order.
        let twist = (2u8..=255)
            .map(|b| {
                let mut u = [0u8; 32];
                u[0] = b;
                u
            })
            .find(|u| MontgomeryPoint(*u).to_edwards(0).is_none())
            .expect("a small u on the twist");
        assert!(!recipient_of(twist).is_low_order());
    }

    #[test]
    fn the_table_is_built_after_enough_uses_and_shared_by_clones() {
        let u = random_point().to_montgomery().to_bytes();
        let r = recipient_of(u);
        let clone = r.clone();
        for i in 0..TABLE_AFTER_USES {
            assert!(r.fast.table.get().is_none(), "built after {i} uses");
            clone.wrap_file_key(&file_key(1)).unwrap();
        }
        r.wrap_file_key(&file_key(1)).unwrap();
        assert!(matches!(r.fast.table.get(), Some(Some(_))));
        // A twist point has no table, and keeps to the ladder.
        let twist = (0u8..)
            .map(|i| [i; 32])
            .find(|u| MontgomeryPoint(*u).to_edwards(0).is_none())
            .unwrap();
        let r = recipient_of(twist);
        for _ in 0..=TABLE_AFTER_USES {
            r.wrap_file_key(&file_key(1)).unwrap();
        }
        assert!(matches!(r.fast.table.get(), Some(None)));
    }

    #[test]
    fn identity_keeps_ages_public_key() {
        let age_id = age::x25519::Identity::generate();
        let ours = X25519Identity::new(age_id.clone());
        assert_eq!(ours.public, recipient_bytes(&age_id.to_public()));
        let derived = EdwardsPoint::mul_base_clamped(*ours.secret)
            .to_montgomery()
            .to_bytes();
        assert_eq!(ours.public, derived);
    }

    fn stanza(args: &[&str], body: Vec<u8>) -> Stanza {
        Stanza {
            tag: "X25519".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            body,
        }
    }

    fn outcome(r: Option<Result<FileKey, age::DecryptError>>) -> String {
        match r {
            None => "none".into(),
            Some(Ok(k)) => format!("key {:?}", k.expose_secret()),
            Some(Err(e)) => format!("error {e:?}"),
        }
    }

    #[test]
    fn malformed_and_foreign_stanzas_end_as_with_age() {
        let age_id = age::x25519::Identity::generate();
        let ours = X25519Identity::new(age_id.clone());
        let good = recipient_of(ours.public)
            .wrap_with(&file_key(3), &[5; 32])
            .unwrap();
        let share = good.args[0].clone();
        // The last character of a 43-character encoding of 32 bytes carries 4 bits, the low
        // 2 of which must be zero: flip one for a non-canonical encoding of the same bytes.
        let last = share.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let idx = alphabet.find(last).unwrap();
        let noncanonical = format!("{}{}", &share[..42], &alphabet[idx ^ 1..=idx ^ 1]);
        // A low-order share: the all-zero shared secret.
        let zero_share = BASE64_STANDARD_NO_PAD.encode([0u8; 32]);
        let retagged = |tag: &str| Stanza {
            tag: tag.into(),
            args: good.args.clone(),
            body: good.body.clone(),
        };
        let cases: Vec<Stanza> = vec![
            retagged("X25519"),
            retagged("x25519"),
            retagged("ssh-ed25519"),
            stanza(&[], good.body.clone()),
            stanza(&[&share, &share], good.body.clone()),
            stanza(&[&noncanonical], good.body.clone()),
            stanza(&[&format!("{share}=")], good.body.clone()),
            stanza(&[&format!("{share}A")], good.body.clone()),
            stanza(&[&format!("{share}AA")], good.body.clone()),
            stanza(&[&share[..42]], good.body.clone()),
            stanza(&["!!!"], good.body.clone()),
            stanza(&[&share], good.body[..31].to_vec()),
            stanza(&[&share], [good.body.clone(), vec![0]].concat()),
            stanza(&[&share], vec![]),
            stanza(&[&zero_share], good.body.clone()),
            stanza(&[&share], {
                let mut b = good.body.clone();
                b[0] ^= 1;
                b
            }),
            // Someone else's stanza.
            recipient_of(random_point().to_montgomery().to_bytes())
                .wrap_with(&file_key(3), &[6; 32])
                .unwrap(),
        ];
        for (i, s) in cases.iter().enumerate() {
            assert_eq!(
                outcome(ours.unwrap_stanza(s)),
                outcome(age_id.unwrap_stanza(s)),
                "case {i}"
            );
        }
        assert_eq!(
            outcome(ours.unwrap_stanza(&cases[0])),
            format!("key {:?}", [3u8; 16])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any 32 bytes as the recipient (points of the curve, of the twist, non-canonical
        /// and high-bit encodings): the table and the ladder agree.
        #[test]
        fn table_and_ladder_agree_on_any_key(u in any::<[u8; 32]>(), e in any::<[u8; 32]>()) {
            let table = point_table(&u);
            prop_assert_eq!(shared_secret(&u, table.as_ref(), &e), ladder(&u, &e));
        }

        /// Our stanza is the one the spec's steps give, through either path.
        #[test]
        fn stanza_is_the_specs(u in any::<[u8; 32]>(), e in any::<[u8; 32]>(), k in any::<u8>()) {
            let r = recipient_of(u);
            let want = reference_stanza(&u, &e, &file_key(k));
            let zero = is_all_zero(&ladder(&u, &e));
            for _ in 0..2 {
                match r.wrap_with(&file_key(k), &e) {
                    Ok(s) => prop_assert!(!zero && same_stanza(&s, &want)),
                    Err(_) => prop_assert!(zero),
                }
                // Again with the table in place (where the key has one).
                r.fast.uses.store(TABLE_AFTER_USES, Ordering::Relaxed);
            }
        }

        /// For a real key: our stanzas open with age's identity, age's with ours, and ours
        /// with ours; a wrong identity gets `None` from both.
        #[test]
        fn wraps_and_unwraps_with_age(
            secret in any::<[u8; 32]>(),
            other in any::<[u8; 32]>(),
            k in any::<u8>(),
        ) {
            let age_id = identity_of(secret);
            let ours = X25519Identity::new(age_id.clone());
            prop_assert_eq!(&*ours.secret, &secret);
            // Clamping ignores 5 bits: a secret differing only there is the same key.
            let clamp = |mut b: [u8; 32]| { b[0] &= 248; b[31] &= 127; b[31] |= 64; b };
            prop_assume!(clamp(other) != clamp(secret));
            let wrong = identity_of(other);
            let wrong_ours = X25519Identity::new(wrong.clone());
            let r = X25519Recipient::new(age_id.to_public());
            r.fast.uses.store(TABLE_AFTER_USES, Ordering::Relaxed);
            let (ours_stanzas, labels) = r.wrap_file_key(&file_key(k)).unwrap();
            prop_assert!(labels.is_empty());
            let (age_stanzas, _) = age_id.to_public().wrap_file_key(&file_key(k)).unwrap();
            for s in [&ours_stanzas[0], &age_stanzas[0]] {
                let want = format!("key {:?}", [k; 16]);
                prop_assert_eq!(outcome(age_id.unwrap_stanza(s)), want.clone());
                prop_assert_eq!(outcome(ours.unwrap_stanza(s)), want);
                prop_assert_eq!(outcome(wrong.unwrap_stanza(s)), "none");
                prop_assert_eq!(outcome(wrong_ours.unwrap_stanza(s)), "none");
            }
        }
    }
}
