#!/usr/bin/env bash
# Whole-command benchmark: seal (and unseal) a tree of 1,000 Secret files, 5 values each
# (16 B to 2 KiB), for 2 recipients, next to Debian's age run once per file on the same tree.
# The same tree is also sealed and opened for 2 post-quantum recipients (mlkem768x25519) in
# the same runs, for PQ against X25519 under the same load (Debian's age 1.1.1 cannot do PQ).
# Usage: bash benches/tree.sh   (builds the release binary; needs age and age-keygen)
# BASELINE=/path/to/an/older/gitops-seal also times that binary in the same runs, on its own
# copy of the tree, for a before/after on the same machine under the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gitops-seal-target}"
cargo build -q --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy: another work tree building into the same target dir cannot swap it mid-run.
cp "$CARGO_TARGET_DIR/release/gitops-seal" "$work/gitops-seal"
BIN="$work/gitops-seal"
"$BIN" keygen --x25519 -o "$work/a.txt" 2>/dev/null
"$BIN" keygen --x25519 -o "$work/b.txt" 2>/dev/null
{ "$BIN" recipient -i "$work/a.txt"; "$BIN" recipient -i "$work/b.txt"; } > "$work/recipients.txt"
"$BIN" keygen -o "$work/pq-a.txt" 2>/dev/null
"$BIN" keygen -o "$work/pq-b.txt" 2>/dev/null
{ "$BIN" recipient -i "$work/pq-a.txt"; "$BIN" recipient -i "$work/pq-b.txt"; } > "$work/pq-recipients.txt"

python3 - "$work/plain" <<'PY'
import base64, os, random, sys
root = sys.argv[1]
rng = random.Random(42)
sizes = [16, 64, 256, 1024, 2048]
for i in range(1000):
    d = os.path.join(root, f"team{i % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"secret-{i}.yaml"), "w") as f:
        f.write(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i}\n  namespace: ns{i % 10}\ntype: Opaque\ndata:\n")
        for k, n in enumerate(sizes):
            f.write(f"  key{k}: {base64.b64encode(rng.randbytes(n)).decode()}\n")
PY

runs=${RUNS:-5}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

seal_times=(); unseal_times=(); age_times=(); base_seal_times=(); base_unseal_times=()
pq_seal_times=(); pq_unseal_times=()
for r in $(seq "$runs"); do
  # On disk before the run, as a checked-out tree is: otherwise the first fsync also
  # flushes the copy.
  rm -rf "$work/tree"; cp -r "$work/plain" "$work/tree"; sync
  t0=$(now); "$BIN" encrypt --in-place -R "$work/recipients.txt" "$work/tree" 2>/dev/null; t1=$(now)
  seal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  t0=$(now); "$BIN" decrypt -i "$work/a.txt" "$work/tree" > /dev/null; t1=$(now)
  unseal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  rm -rf "$work/pq"; cp -r "$work/plain" "$work/pq"; sync
  t0=$(now); "$BIN" encrypt --in-place -R "$work/pq-recipients.txt" "$work/pq" 2>/dev/null; t1=$(now)
  pq_seal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  t0=$(now); "$BIN" decrypt -i "$work/pq-a.txt" "$work/pq" > /dev/null; t1=$(now)
  pq_unseal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  if [ -n "${BASELINE:-}" ]; then
    rm -rf "$work/base"; cp -r "$work/plain" "$work/base"; sync
    t0=$(now); "$BASELINE" encrypt --in-place -R "$work/recipients.txt" "$work/base" 2>/dev/null; t1=$(now)
    base_seal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
    t0=$(now); "$BASELINE" decrypt -i "$work/a.txt" "$work/base" > /dev/null; t1=$(now)
    base_unseal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  fi
  t0=$(now)
  find "$work/plain" -name '*.yaml' | while read -r f; do age -R "$work/recipients.txt" -o "$f.age" "$f"; done
  t1=$(now)
  age_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  find "$work/plain" -name '*.age' -delete
done
s=$(printf '%s\n' "${seal_times[@]}" | median)
u=$(printf '%s\n' "${unseal_times[@]}" | median)
a=$(printf '%s\n' "${age_times[@]}" | median)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "1000 files x 5 values, 2 recipients, median of $runs runs"
echo "gitops-seal encrypt --in-place tree/ : ${s} s"
echo "gitops-seal decrypt tree/            : ${u} s"
echo "age once per file (whole file)       : ${a} s"
echo "speed-up over the age loop           : $(awk "BEGIN{printf \"%.1f\", $a / $s}")x"
ps=$(printf '%s\n' "${pq_seal_times[@]}" | median)
pu=$(printf '%s\n' "${pq_unseal_times[@]}" | median)
echo "PQ encrypt --in-place tree/          : ${ps} s ($(awk "BEGIN{printf \"%.2f\", $ps / $s}")x X25519)"
echo "PQ decrypt tree/                     : ${pu} s ($(awk "BEGIN{printf \"%.2f\", $pu / $u}")x X25519)"
echo "bytes of the sealed tree             : X25519 $(du -sb "$work/tree" | cut -f1), PQ $(du -sb "$work/pq" | cut -f1)"
if [ -n "${BASELINE:-}" ]; then
  bs=$(printf '%s\n' "${base_seal_times[@]}" | median)
  bu=$(printf '%s\n' "${base_unseal_times[@]}" | median)
  echo "BASELINE encrypt --in-place tree/    : ${bs} s ($(awk "BEGIN{printf \"%.1f\", $a / $bs}")x the age loop)"
  echo "BASELINE decrypt tree/               : ${bu} s"
fi
