#!/usr/bin/env bash
# Git benchmarks: the pre-commit hook with 10 staged manifests in a repository of 10,000 files,
# and `scan --history` over 1,000 commits.
# Usage: bash benches/hook.sh   (builds the release binary; needs git and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gitops-seal-target}"
# BIN=path: measure that binary instead of building one.
if [ -z "${BIN:-}" ]; then
  cargo build -q --release
  BIN="$CARGO_TARGET_DIR/release/gitops-seal"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 HOME="$work" GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.com \
  GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.com
"$BIN" keygen -o "$work/id.txt" 2>/dev/null
recipient=$("$BIN" recipient -i "$work/id.txt")

# One sealed Secret to copy around, so the repositories hold what real ones do: a third
# ConfigMaps, a third Deployments, a third SealedSecrets.
printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: n\nstringData:\n  user: admin\n  password: correct-horse-battery\n  url: postgres://db:5432/app\n' \
  | "$BIN" encrypt -r "$recipient" - > "$work/sealed.yaml"

gen() { # gen DIR N SEED: writes N manifests under DIR
  python3 - "$@" "$work/sealed.yaml" <<'PY'
import os, random, sys
root, n, seed, sealed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4]).read()
rng = random.Random(seed)
for i in range(n):
    d = os.path.join(root, f"apps/app{i % 100}")
    os.makedirs(d, exist_ok=True)
    kind = i % 3
    with open(os.path.join(d, f"m{i}.yaml"), "w") as f:
        if kind == 0:
            f.write(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  v: \"{rng.random()}\"\n")
        elif kind == 1:
            f.write(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\nspec:\n  replicas: {rng.randint(1, 9)}\n  template:\n    spec:\n      containers:\n      - name: app\n        image: example/app:{rng.randint(1, 999)}\n")
        else:
            f.write(sealed.replace("name: s\n", f"name: s{i}\n", 1))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s%N; }
runs=${RUNS:-21}

# --- hook: 10,000 files committed, 10 manifests staged --------------------------------------
repo="$work/big"
git init -q -b main "$repo"
gen "$repo" 10000 1
git -C "$repo" add -A
git -C "$repo" commit -qm base
gen "$repo/staged" 10 2
git -C "$repo" add -A
export PATH="$(dirname "$BIN"):$PATH"
(cd "$repo" && gitops-seal hook install 2>/dev/null)
hook=(); cold=(); empty=()
for _ in $(seq "$runs"); do
  # The installed hook script, as `git commit` runs it (sh, then gitops-seal hook run); with
  # the record of blobs judged clean (.git/gitops-seal/) as a second run finds it, and without.
  t0=$(now); (cd "$repo" && .git/hooks/pre-commit); t1=$(now); hook+=($(( (t1 - t0) / 1000 )))
  rm -rf "$repo/.git/gitops-seal"
  t0=$(now); (cd "$repo" && .git/hooks/pre-commit); t1=$(now); cold+=($(( (t1 - t0) / 1000 )))
  t0=$(now); (cd "$repo" && true); t1=$(now); empty+=($(( (t1 - t0) / 1000 )))
done
h=$(printf '%s\n' "${hook[@]}" | median)
c=$(printf '%s\n' "${cold[@]}" | median)
e=$(printf '%s\n' "${empty[@]}" | median)
instructions() {
  command -v valgrind >/dev/null || { echo "?"; return; }
  (cd "$repo" && valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" hook run 2>&1 \
    | sed -n 's/.*Collected : //p')
}
i_warm=$(instructions)
rm -rf "$repo/.git/gitops-seal"
i_cold=$(instructions)

# --- history: 1,000 commits, 5 files changed in each ---------------------------------------
hist="$work/hist"
git init -q -b main "$hist"
gen "$hist" 300 3
git -C "$hist" add -A
git -C "$hist" commit -qm base
python3 - "$hist" "$work/sealed.yaml" <<'PY' | git -C "$hist" fast-import --quiet
import random, sys
root, sealed = sys.argv[1], open(sys.argv[2]).read()
rng = random.Random(4)
out = sys.stdout
for c in range(1, 1000):
    msg = f"change {c}"
    out.write(f"commit refs/heads/main\ncommitter b <b@example.com> {1700000000 + c} +0000\ndata {len(msg)}\n{msg}\n")
    if c == 1:
        out.write("from refs/heads/main^0\n")
    for j in range(5):
        i = rng.randrange(300)
        if i % 3 == 2:
            body = sealed.replace("name: s\n", f"name: s{i}-{c}\n", 1)
        else:
            body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  v: \"{c}-{j}\"\n"
        data = body.encode()
        out.write(f"M 100644 inline apps/app{i % 100}/m{i}.yaml\ndata {len(data)}\n")
        out.write(body)
        out.write("\n")
PY
git -C "$hist" reset -q --hard main
commits=$(git -C "$hist" rev-list --all | wc -l)
blobs=$(git -C "$hist" rev-list --objects --all | cut -d' ' -f1 | git -C "$hist" cat-file --batch-check='%(objecttype)' | grep -c blob)
scan=()
for _ in $(seq 5); do
  t0=$(now); "$BIN" scan --history "$hist" >/dev/null 2>&1 || true; t1=$(now); scan+=($(( (t1 - t0) / 1000 )))
done
s=$(printf '%s\n' "${scan[@]}" | median)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "pre-commit hook, 10 staged manifests, 10,000 files : $(awk "BEGIN{printf \"%.1f\", $h / 1000}") ms; without the clean record: $(awk "BEGIN{printf \"%.1f\", $c / 1000}") ms (medians of $runs; a bare subshell: $(awk "BEGIN{printf \"%.1f\", $e / 1000}") ms)"
echo "gitops-seal hook run, instructions (callgrind): $i_warm with the record, $i_cold without"
echo "scan --history: $commits commits, $blobs blobs : $(awk "BEGIN{printf \"%.0f\", $s / 1000}") ms -> $(awk "BEGIN{printf \"%.0f\", $blobs / ($s / 1e6)}") blobs/s (median of 5)"
