//! Documentation that makes claims the tests must back.

use std::path::Path;

/// `docs/SECURITY.md`: every row of its "cannot" tables names at least one test as
/// `` `file.rs::function` ``, every named test exists (a function marked `#[test]` or
/// `#[tokio::test]` in that file), and every actor has at least one.
#[test]
fn security_md_names_only_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/SECURITY.md")).unwrap();
    let mut problems = Vec::new();
    let mut section = String::new();
    let mut named_in_section = 0usize;
    let mut sections = 0usize;
    let finish = |section: &str, named: usize, problems: &mut Vec<String>| {
        if !section.is_empty() && section != "Known limits" && named == 0 {
            problems.push(format!("section {section:?} names no test"));
        }
    };
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            finish(&section, named_in_section, &mut problems);
            section = title.to_string();
            named_in_section = 0;
            sections += 1;
            continue;
        }
        if !line.starts_with("| ") || line.starts_with("| cannot ") {
            continue;
        }
        let refs = test_refs(line);
        if refs.is_empty() {
            problems.push(format!("a row names no test: {line}"));
        }
        for (file, function) in refs {
            named_in_section += 1;
            if let Err(why) = is_a_test(&root.join(file), function) {
                problems.push(format!("{file}::{function}: {why}"));
            }
        }
    }
    finish(&section, named_in_section, &mut problems);
    assert!(
        sections >= 9,
        "the actors' sections and the known limits: {sections}"
    );
    assert!(
        problems.is_empty(),
        "docs/SECURITY.md:\n{}",
        problems.join("\n")
    );
}

/// Every `` `path.rs::name` `` in `line`.
fn test_refs(line: &str) -> Vec<(&str, &str)> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.rsplit_once("::"))
        .filter(|(file, _)| file.ends_with(".rs"))
        .collect()
}

fn is_a_test(file: &Path, function: &str) -> Result<(), String> {
    let source = std::fs::read_to_string(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let at = source
        .find(&format!("fn {function}("))
        .ok_or("no such function")?;
    let before = &source[..at];
    let attribute = before.rfind("#[test]").max(before.rfind("#[tokio::test"));
    let previous_fn = before.rfind("fn ");
    match (attribute, previous_fn) {
        (Some(a), Some(f)) if a > f => Ok(()),
        (Some(_), None) => Ok(()),
        _ => Err("not marked #[test] or #[tokio::test]".into()),
    }
}

#[test]
fn test_refs_are_read_from_backticks() {
    assert_eq!(
        test_refs("| a | b | `tests/it/x.rs::one`, `src/y.rs::two` and `other` |"),
        [("tests/it/x.rs", "one"), ("src/y.rs", "two")]
    );
    assert!(test_refs("| a | `no test here` |").is_empty());
}

/// The house's layers (src/lib.rs): core, ops, adapters, sync, controller, each importing only
/// from the layers before it. Every `crate::LAYER` path in a module of a lower layer fails this.
#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    const LAYERS: [&str; 5] = ["core", "ops", "adapters", "sync", "controller"];
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut checked = 0;
    for (rank, layer) in LAYERS.iter().enumerate() {
        let mut list = Vec::new();
        files(&src.join(layer), &mut list);
        for file in list {
            checked += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                // A doc link may point anywhere; code may not.
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for above in &LAYERS[rank + 1..] {
                    if line.contains(&format!("crate::{above}::"))
                        || line.contains(&format!("crate::{above};"))
                        || line.contains(&format!("crate::{above}{{"))
                    {
                        found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                    }
                }
                if line.contains("crate::cli") {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(checked > 50, "{checked} files read");
    assert!(
        found.is_empty(),
        "imports from a layer above:\n{}",
        found.join("\n")
    );
}
