//! Any bytes given to the sealed-manifest parser and the whole-file operations must give a
//! value or an error, never a panic, in bounded time.
#![no_main]

use gitops_seal::core::keys::Identity;
use gitops_seal::core::manifest::{classify, DocKind};
use gitops_seal::core::yaml::split_documents;
use gitops_seal::core::SealedSecret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let docs = split_documents(text);
    assert_eq!(docs.iter().map(|d| d.text).collect::<String>(), text);
    for doc in &docs {
        if let Ok(DocKind::SealedSecret) = classify(doc) {
            if let Ok(sealed) = SealedSecret::parse(doc) {
                let ids = [Identity::generate()];
                let _ = sealed.unseal(&ids, Some("ns"));
                let _ = sealed.render(false);
            }
        }
    }
    let _ = gitops_seal::ops::verify(data, &Default::default());
});
