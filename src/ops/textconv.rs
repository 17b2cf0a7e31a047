//! What `git diff` shows of a manifest (the textconv driver): SealedSecrets opened when an
//! identity can, otherwise with every value shown as `<sealed>`. Never fails on content, so a
//! diff always works.

use serde_json::Value;
use zeroize::Zeroizing;

use crate::core::keys::Identity;
use crate::core::manifest::{self, DocKind};
use crate::core::secret::{self, PlainSecret};
use crate::core::yaml;
use crate::core::SealedSecret;

use super::SealedList;

pub fn textconv(input: &[u8], identities: &[Identity]) -> Zeroizing<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Zeroizing::new(input.to_vec());
    };
    let docs = yaml::split_documents(text);
    let shown: Vec<Option<Zeroizing<String>>> = docs
        .iter()
        .map(|doc| {
            let json = yaml::is_json(doc.text);
            match manifest::classify(doc) {
                Ok(DocKind::SealedSecret) => SealedSecret::parse(doc).ok().map(|sealed| {
                    let opened = secret::render_secret(&open_or_hide(&sealed, identities), json);
                    let mut shown = Zeroizing::new(String::with_capacity(opened.len() + 200));
                    shown.push_str(&format!(
                        "# gitops-seal: scope {}, recipients: {}\n",
                        sealed.scope,
                        sealed.recipients.join(", ")
                    ));
                    shown.push_str(&opened);
                    shown
                }),
                Ok(DocKind::List) => show_list(doc, identities, json),
                _ => None,
            }
        })
        .collect();
    // Sized once: growing the buffer would leave unwiped copies of opened values behind.
    let size = text.len() + shown.iter().flatten().map(|s| s.len()).sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    for (doc, shown) in docs.iter().zip(&shown) {
        match shown {
            Some(shown) => {
                out.extend_from_slice(manifest::leading_trivia(doc.text).as_bytes());
                out.extend_from_slice(shown.as_bytes());
                out.extend_from_slice(manifest::trailing_trivia(doc.text).as_bytes());
            }
            None => out.extend_from_slice(doc.text.as_bytes()),
        }
    }
    out
}

fn show_list(
    doc: &yaml::RawDocument<'_>,
    identities: &[Identity],
    json: bool,
) -> Option<Zeroizing<String>> {
    let mut list = SealedList::parse(doc).ok()?;
    if list.items.is_empty() {
        return None;
    }
    for (n, sealed) in std::mem::take(&mut list.items) {
        let Ok(sealed) = sealed else { continue };
        let shown = secret::render_secret(&open_or_hide(&sealed, identities), true);
        if let Ok(value) = serde_json::from_str::<Value>(&shown) {
            list.replace(n, value);
        }
    }
    let shown = Zeroizing::new(list.render(json));
    super::wipe(&mut list.list);
    Some(shown)
}

fn open_or_hide(sealed: &SealedSecret, identities: &[Identity]) -> PlainSecret {
    sealed
        .unseal(identities, None)
        .unwrap_or_else(|_| PlainSecret {
            name: sealed.name.clone(),
            namespace: sealed.namespace.clone(),
            secret_type: sealed.template.secret_type.clone(),
            immutable: sealed.template.immutable,
            labels: sealed.template.labels.clone(),
            annotations: sealed.template.annotations.clone(),
            data: sealed
                .encrypted_data
                .keys()
                .map(|k| (k.clone(), Zeroizing::new(b"<sealed>".to_vec())))
                .collect(),
        })
}
