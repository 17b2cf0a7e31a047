//! One X25519 stanza, sealed and opened, by age's own types and by ours
//! (src/core/x25519.rs), in one binary so that both are measured in the same run.
//!
//! `cargo bench --bench stanza` prints the median time per stanza of each. For instruction
//! counts, run the built binary with a mode and a count under callgrind, twice, and take the
//! difference over the difference in count (which leaves out start-up and key set-up):
//!
//! ```sh
//! B=$(ls -t $CARGO_TARGET_DIR/release/deps/stanza-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null $B wrap 1000   # and 2000
//! ```
//!
//! Modes: `age-wrap`, `wrap` (ours, the recipient's table built), `wrap-ladder` (ours before
//! the table: the first uses of a key), `age-unwrap`, `unwrap`.

use std::hint::black_box;
use std::time::Instant;

use age::{Identity as _, Recipient as _};
use age_core::format::{FileKey, Stanza};
use gitops_seal::core::x25519::{X25519Identity, X25519Recipient, TABLE_AFTER_USES};

const MODES: [&str; 5] = ["age-wrap", "wrap", "wrap-ladder", "age-unwrap", "unwrap"];

// age 0.13 deprecates its classical X25519 types; this bench measures ours against them.
#[allow(deprecated)]
struct Keys {
    age_id: age::x25519::Identity,
    ours_id: X25519Identity,
    age_r: age::x25519::Recipient,
    /// Used past TABLE_AFTER_USES: its table is built.
    warm: X25519Recipient,
    stanza: Stanza,
}

#[allow(deprecated)] // age's classical X25519 types, the reference (see Keys).
fn keys() -> Keys {
    let age_id = age::x25519::Identity::generate();
    let age_r = age_id.to_public();
    let warm = X25519Recipient::new(age_r.clone());
    for _ in 0..=TABLE_AFTER_USES {
        warm.wrap_file_key(&file_key()).unwrap();
    }
    let stanza = age_r.wrap_file_key(&file_key()).unwrap().0.remove(0);
    Keys {
        ours_id: X25519Identity::new(age_id.clone()),
        age_id,
        age_r,
        warm,
        stanza,
    }
}

fn file_key() -> FileKey {
    FileKey::new(Box::new([7; 16]))
}

/// Runs `mode` `n` times.
fn run(k: &Keys, mode: &str, n: usize) {
    let fk = file_key();
    for _ in 0..n {
        match mode {
            "age-wrap" => drop(black_box(k.age_r.wrap_file_key(&fk).unwrap())),
            "wrap" => drop(black_box(k.warm.wrap_file_key(&fk).unwrap())),
            // A fresh recipient each time: its first use, by the ladder.
            "wrap-ladder" => drop(black_box(
                X25519Recipient::new(k.age_r.clone())
                    .wrap_file_key(&fk)
                    .unwrap(),
            )),
            "age-unwrap" => drop(black_box(k.age_id.unwrap_stanza(&k.stanza).unwrap())),
            "unwrap" => drop(black_box(k.ours_id.unwrap_stanza(&k.stanza).unwrap())),
            _ => panic!("unknown mode {mode}; one of {MODES:?}"),
        }
    }
}

fn main() {
    let k = keys();
    // `cargo bench` passes `--bench`; a mode and a count run just that.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let [mode, n] = &args[..] {
        run(&k, mode, n.parse().expect("a count"));
        return;
    }
    let (batches, per_batch) = (21, 200);
    for mode in MODES {
        let mut times: Vec<f64> = (0..batches)
            .map(|_| {
                let t = Instant::now();
                run(&k, mode, per_batch);
                t.elapsed().as_secs_f64() * 1e6 / per_batch as f64
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{mode:12} median {:7.2} µs  fastest {:7.2} µs  per stanza ({batches} × {per_batch})",
            times[batches / 2],
            times[0]
        );
    }
}
