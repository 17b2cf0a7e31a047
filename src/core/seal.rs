//! One value in, one standard age file out, and back. The plaintext inside the age file is
//! the binding's header line, a newline, then the value's exact bytes.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use super::binding::Binding;
use super::error::ErrorKind;
use super::keys::{Identity, Recipient};
use super::secret::SecretBytes;

/// Seals `value` for `recipients`, bound by `binding`. Returns a binary age file.
pub fn seal_value(
    recipients: &[Recipient],
    binding: &Binding,
    value: &[u8],
) -> Result<Vec<u8>, ErrorKind> {
    if recipients.is_empty() {
        return Err(ErrorKind::NoRecipients);
    }
    // age's Encryptor refuses the mix too, in its own words; ours name the classical keys.
    super::keys::check_kinds(recipients, false, "the recipient list")?;
    let header = binding.header_line();
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_age()))
        .map_err(ErrorKind::Seal)?;
    // age adds a ~200-byte header per file plus one stanza (~100 bytes) per recipient.
    let mut out = Vec::with_capacity(value.len() + header.len() + 64 + 160 * recipients.len());
    let seal = |out: &mut Vec<u8>| -> std::io::Result<()> {
        let mut w = encryptor.wrap_output(out)?;
        w.write_all(header.as_bytes())?;
        w.write_all(b"\n")?;
        w.write_all(value)?;
        w.finish()?;
        Ok(())
    };
    seal(&mut out).map_err(|e| ErrorKind::Seal(age::EncryptError::Io(e)))?;
    Ok(out)
}

pub(crate) fn not_age(detail: &'static str, source: Option<age::DecryptError>) -> ErrorKind {
    ErrorKind::NotAge { detail, source }
}

/// Opens an age file and returns its binding and value, without checking the binding.
pub fn open_value(
    identities: &[Identity],
    ciphertext: &[u8],
) -> Result<(Binding, SecretBytes), ErrorKind> {
    open_value_attributed(identities, ciphertext).map(|(_, binding, value)| (binding, value))
}

/// One identity handed to age, remembering its position when it is the one that opens the
/// file key. age tries identities in the order given and stops at the first that opens, so
/// the position recorded is the first identity, in `identities`' order, that can open the
/// value: no stanza is tried that age would not try anyway.
struct Attributed<'a> {
    identity: &'a Identity,
    index: usize,
    opened_by: &'a std::sync::atomic::AtomicUsize,
}

impl age::Identity for Attributed<'_> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        let result = age::Identity::unwrap_stanzas(self.identity, stanzas);
        if matches!(result, Some(Ok(_))) {
            self.opened_by
                .store(self.index, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }
}

/// As [`open_value`], and which identity opened it: the index in `identities` of the first one
/// (in that order) that can. The controller orders its keys so that this names the key a value
/// needs (docs/OPERATIONS.md, rotation).
pub fn open_value_attributed(
    identities: &[Identity],
    ciphertext: &[u8],
) -> Result<(usize, Binding, SecretBytes), ErrorKind> {
    if !ciphertext.starts_with(b"age-encryption.org/") {
        return Err(not_age("unknown format", None));
    }
    let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(|e| match e {
        age::DecryptError::UnknownFormat => not_age("unknown format", Some(e)),
        age::DecryptError::Io(_) => not_age("truncated header", Some(e)),
        _ => not_age("invalid header", Some(e)),
    })?;
    if decryptor.is_scrypt() {
        return Err(not_age(
            "passphrase-encrypted age files are not supported",
            None,
        ));
    }
    let opened_by = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let attributed: Vec<Attributed<'_>> = identities
        .iter()
        .enumerate()
        .map(|(index, identity)| Attributed {
            identity,
            index,
            opened_by: &opened_by,
        })
        .collect();
    let mut reader = decryptor
        .decrypt(attributed.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => ErrorKind::NoMatchingIdentity,
            age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
                not_age("invalid header", Some(e))
            }
            _ => ErrorKind::Corrupt,
        })?;
    // The plaintext is never longer than the ciphertext: size the buffer once so no
    // reallocation leaves an unwiped copy behind.
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(&mut plaintext)
        .map_err(|_| ErrorKind::Corrupt)?;
    let (binding, value) = Binding::split_plaintext(&plaintext)?;
    let index = opened_by.load(std::sync::atomic::Ordering::Relaxed);
    if index >= identities.len() {
        // age opened the file with a key no identity reported: cannot happen; refuse rather
        // than attribute it wrongly.
        return Err(ErrorKind::Corrupt);
    }
    Ok((index, binding, Zeroizing::new(value.to_vec())))
}

/// Opens an age file and checks that it may sit where `expected` says.
pub fn unseal_value(
    identities: &[Identity],
    expected: &Binding,
    ciphertext: &[u8],
) -> Result<SecretBytes, ErrorKind> {
    unseal_value_attributed(identities, expected, ciphertext).map(|(_, value)| value)
}

/// As [`unseal_value`], with the index of the identity that opened it
/// ([`open_value_attributed`]).
pub fn unseal_value_attributed(
    identities: &[Identity],
    expected: &Binding,
    ciphertext: &[u8],
) -> Result<(usize, SecretBytes), ErrorKind> {
    let (index, binding, value) = open_value_attributed(identities, ciphertext)?;
    binding.check(expected)?;
    Ok((index, value))
}

/// The recipient stanza tags in an age file's header (`X25519`, `ssh-ed25519`, `ssh-rsa`),
/// leaving out the random "grease" stanzas age adds. X25519 stanzas do not say whom they are
/// for, so this proves counts, not recipients.
pub fn stanza_tags(ciphertext: &[u8]) -> Result<Vec<String>, ErrorKind> {
    let not_age = || not_age("invalid header", None);
    let mut lines = ciphertext.split(|&b| b == b'\n');
    if lines.next() != Some(b"age-encryption.org/v1".as_slice()) {
        return Err(super::seal::not_age("unknown format", None));
    }
    let mut tags = Vec::new();
    for line in lines {
        if line.starts_with(b"---") {
            return Ok(tags);
        }
        if let Some(rest) = line.strip_prefix(b"-> ") {
            let tag = rest.split(|&b| b == b' ').next().ok_or_else(not_age)?;
            let tag = String::from_utf8(tag.to_vec()).map_err(|_| not_age())?;
            if matches!(
                tag.as_str(),
                "mlkem768x25519" | "X25519" | "ssh-ed25519" | "ssh-rsa" | "scrypt"
            ) {
                tags.push(tag);
            }
        }
    }
    Err(not_age())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::binding::Scope;

    #[test]
    fn the_first_identity_in_order_that_opens_a_value_is_named() {
        let (a, b, c) = (
            Identity::generate_x25519(),
            Identity::generate(),
            Identity::generate_x25519(),
        );
        let bind = Binding::new(Scope::Strict, "Opaque", Some("ns"), "s", "k").unwrap();
        let for_ab = seal_value(&[a.to_recipient().unwrap()], &bind, b"v").unwrap();
        let for_b = seal_value(&[b.to_recipient().unwrap()], &bind, b"v").unwrap();
        let ids = [c, a, b];
        assert_eq!(open_value_attributed(&ids, &for_ab).unwrap().0, 1);
        assert_eq!(open_value_attributed(&ids, &for_b).unwrap().0, 2);
        let (index, value) = unseal_value_attributed(&ids, &bind, &for_b).unwrap();
        assert_eq!((index, &value[..]), (2, &b"v"[..]));
        // Both open it: the first in the order given is named, whichever it is.
        let text = |id: &Identity| id.to_identity_file("t").unwrap();
        let (x1, x2) = (Identity::generate_x25519(), Identity::generate_x25519());
        let for_both = seal_value(
            &[x1.to_recipient().unwrap(), x2.to_recipient().unwrap()],
            &bind,
            b"v",
        )
        .unwrap();
        let parse = |t: &str| crate::core::keys::parse_identity_file(t).unwrap().remove(0);
        let forward = [parse(&text(&x1)), parse(&text(&x2))];
        let backward = [parse(&text(&x2)), parse(&text(&x1))];
        assert_eq!(open_value_attributed(&forward, &for_both).unwrap().0, 0);
        assert_eq!(open_value_attributed(&backward, &for_both).unwrap().0, 0);
        assert_eq!(
            open_value_attributed(&backward[1..], &for_both).unwrap().0,
            0
        );
        assert!(matches!(
            open_value_attributed(&[Identity::generate()], &for_both),
            Err(ErrorKind::NoMatchingIdentity)
        ));
    }

    #[test]
    fn values_open_whatever_position_their_stanza_has() {
        let me = Identity::generate();
        let other = Identity::generate();
        let (mine, theirs) = (me.to_recipient().unwrap(), other.to_recipient().unwrap());
        let b = Binding::new(Scope::Strict, "Opaque", Some("ns"), "s", "k").unwrap();
        // The hint learnt on one order must not stop the other order (or a lone stanza)
        // from opening.
        for order in [
            vec![theirs.clone(), mine.clone()],
            vec![mine.clone(), theirs.clone()],
            vec![theirs.clone(), mine.clone()],
            vec![mine.clone()],
        ] {
            let ct = seal_value(&order, &b, b"v").unwrap();
            let value = unseal_value(std::slice::from_ref(&me), &b, &ct).unwrap();
            assert_eq!(&value[..], b"v");
        }
        let ct = seal_value(std::slice::from_ref(&theirs), &b, b"v").unwrap();
        assert!(matches!(
            unseal_value(std::slice::from_ref(&me), &b, &ct),
            Err(ErrorKind::NoMatchingIdentity)
        ));
    }
}
