#!/usr/bin/env bash
# Benchmark of the GitOps reconcile loop (`gitops-seal sync --once`) against the standalone test
# API server (kube-test-server), release builds.
#
#  1. A real Git repository (git CLI) of TOTAL manifests, one per file: NSS Namespaces (so the
#     first stage applies them), SEALED SealedSecrets (3 values each, sealed with
#     `gitops-seal encrypt --in-place` before anything is committed) and ConfigMaps for the rest,
#     spread over the namespaces.
#  2. RUNS times, each with a fresh API server and an empty cache dir:
#     - COLD: `sync --once` from its start to its exit (fetch, plan and unseal, discovery, each
#       stage dry-run then applied, prune, status write);
#     - UNCHANGED: a second `sync --once` with the same cache, nothing changed in Git or in the
#       cluster (it still fetches, reads, unseals, dry-runs and applies every object: that is how
#       drift is corrected).
#     Both are checked: exit 0, then every object present in the server with the sync label.
#  3. The Git-only part of each, for the breakdown: `sync --dry-run` (fetch, read, plan, unseal;
#     no cluster) with an empty cache and again with that cache warm.
#
# Usage: bash benches/sync.sh                      (TOTAL=1000 SEALED=200 NSS=4 RUNS=3 by default)
#        TOTAL=200 SEALED=40 RUNS=1 bash benches/sync.sh
#        LATENCY_MS=2 bash benches/sync.sh     (every API request delayed 2 ms, as a real
#                                               API server's round trip)
# Needs kubectl (client only), git, python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gitops-seal-target}"
TOTAL=${TOTAL:-1000}
SEALED=${SEALED:-200}
NSS=${NSS:-4}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-300}   # seconds, for every sync run (timeout(1))
LATENCY_MS=${LATENCY_MS:-0}

cargo build -q --release --bin gitops-seal -p gitops-seal
cargo build -q --release -p kube-test-server --bin kube-test-server
work=$(mktemp -d)
# Copies: another build in the shared target folder must not replace them mid-run.
mkdir -p "$work/bin"
# BIN=path: measure that gitops-seal binary instead (an older build, say).
cp "${BIN:-$CARGO_TARGET_DIR/release/gitops-seal}" "$work/bin/gitops-seal"
cp "$CARGO_TARGET_DIR/release/kube-test-server" "$work/bin/"
BIN="$work/bin/gitops-seal"
SERVER="$work/bin/kube-test-server"
server_pid=""
stop() { # stop PID: SIGTERM, then wait for it
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now_ns() { date +%s%N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v h="$hz" 'BEGIN {printf "%.2f", t / h}'; }

# --- 1. the repository -------------------------------------------------------------------------
CONFIGMAPS=$((TOTAL - NSS - SEALED))
[ "$CONFIGMAPS" -ge 0 ] || { echo "bench: TOTAL < NSS + SEALED" >&2; exit 1; }
"$BIN" keygen -o "$work/id.txt" 2> /dev/null
"$BIN" recipient -i "$work/id.txt" | grep -v '^#' > "$work/recipients.txt"
repo="$work/repo"
python3 - "$repo" "$NSS" "$SEALED" "$CONFIGMAPS" <<'PY'
import os, sys
repo, nss, sealed, cms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def ns(i):
    return f"team-{i % nss}"
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
for i in range(nss):
    write(f"{repo}/namespaces/team-{i}.yaml",
          f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-{i}\n")
for i in range(sealed):
    write(f"{repo}/{ns(i)}/secrets/s{i:04d}.yaml",
          f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i:04d}\n  namespace: {ns(i)}\n"
          f"type: Opaque\nstringData:\n  username: user-{i}\n"
          f"  password: password-{i}-correct-horse-battery-staple\n"
          f"  url: postgres://user-{i}@db.{ns(i)}.svc:5432/app{i}\n")
for i in range(cms):
    write(f"{repo}/{ns(i)}/config/c{i:04d}.yaml",
          f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i:04d}\n  namespace: {ns(i)}\n"
          f"  labels:\n    app: app-{i % 50}\ndata:\n  LOG_LEVEL: info\n  REPLICAS: \"{i % 5 + 1}\"\n"
          f"  ENDPOINT: https://api-{i}.{ns(i)}.svc:8443/v1\n"
          f"  settings.json: '{{\"timeout\": {i % 30 + 1}, \"retries\": 3, \"feature\": \"f{i}\"}}'\n")
PY
# Seal the Secrets where they lie, before anything is committed.
t=$(now_ns)
for i in $(seq 0 $((NSS - 1))); do
  [ -d "$repo/team-$i/secrets" ] && "$BIN" encrypt --in-place -R "$work/recipients.txt" "$repo/team-$i/secrets" 2> /dev/null
done
t_seal=$(( ($(now_ns) - t) / 1000000 ))
if grep -rlq '^kind: Secret$' "$repo"; then echo "bench: a plaintext Secret is left in the repository" >&2; exit 1; fi
git -C "$repo" init -q -b main
git -C "$repo" -c user.name=bench -c user.email=bench@example.invalid add -A
git -C "$repo" -c user.name=bench -c user.email=bench@example.invalid commit -q -m "$TOTAL manifests"
files=$(git -C "$repo" ls-files | wc -l)
sealed_files=$(grep -rl '^kind: SealedSecret$' "$repo" --include='*.yaml' | wc -l)
repo_kib=$(git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 cat) | wc -c | awk '{printf "%d", $1 / 1024}')

# --- 2. the runs -------------------------------------------------------------------------------
start_server() {
  local port
  port=$(free_port)
  rm -f "$work/kubeconfig"
  "$SERVER" --listen "127.0.0.1:$port" --kubeconfig "$work/kubeconfig" --latency-ms "$LATENCY_MS" > "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q serving "$work/server.log" && break; sleep 0.05; done
  grep -q serving "$work/server.log" || { cat "$work/server.log"; echo "bench: the test API server did not start" >&2; exit 1; }
  # The status ConfigMap's namespace.
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: gitops-seal\n' \
    | kubectl --kubeconfig "$work/kubeconfig" apply --server-side --validate=false -f - > /dev/null
}
# sync_once LOG CACHE: one `sync --once`; prints its wall time in ms. Fails on a non-zero exit.
sync_once() {
  local t rc=0
  t=$(now_ns)
  RUST_LOG=info timeout "$TIMEOUT" "$BIN" sync --repo "file://$repo" --name bench --once \
    -i "$work/id.txt" --kubeconfig "$work/kubeconfig" --namespace gitops-seal \
    --cache-dir "$2" --log-format json > "$1" 2>&1 || rc=$?
  local ms=$(( ($(now_ns) - t) / 1000000 ))
  [ "$rc" -eq 0 ] || { cat "$1" >&2; echo "bench: sync --once exited $rc" >&2; exit 1; }
  echo "$ms"
}
# dry_run CACHE: `sync --dry-run` (Git only); prints its wall time in ms.
dry_run() {
  local t
  t=$(now_ns)
  "$BIN" sync --repo "file://$repo" --name bench --dry-run -i "$work/id.txt" \
    --cache-dir "$1" > "$work/plan.txt"
  echo $(( ($(now_ns) - t) / 1000000 ))
}
check_cluster() { # every object present with the sync label
  local n
  n=$(kubectl --kubeconfig "$work/kubeconfig" get configmaps,secrets,namespaces -A \
        -l gitops-seal.dev/sync=bench --no-headers 2>/dev/null | wc -l)
  [ "$n" -eq "$TOTAL" ] || { echo "bench: $n objects carry the sync label, expected $TOTAL" >&2; exit 1; }
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rustc_before=$(ps -eo comm= | grep -c '^rustc\|^clippy-driver\|^cargo' || true)
: > "$work/results.txt"
for run in $(seq "$RUNS"); do
  start_server
  cache="$work/cache-$run"
  s0=$(cpu_ticks "$server_pid")
  cold=$(sync_once "$work/cold-$run.log" "$cache")
  s1=$(cpu_ticks "$server_pid")
  check_cluster
  warm=$(sync_once "$work/warm-$run.log" "$cache")
  s2=$(cpu_ticks "$server_pid")
  check_cluster
  dry_cold=$(dry_run "$work/dry-cache-$run")
  dry_warm=$(dry_run "$work/dry-cache-$run")
  echo "$cold $warm $dry_cold $dry_warm $((s1 - s0)) $((s2 - s1))" >> "$work/results.txt"
  echo "run $run: cold ${cold} ms, unchanged ${warm} ms; Git only (dry run): cold ${dry_cold} ms, warm ${dry_warm} ms; API server CPU $(secs $((s1 - s0))) s / $(secs $((s2 - s1))) s" >&2
  stop "$server_pid"; server_pid=""
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
rustc_after=$(ps -eo comm= | grep -c '^rustc\|^clippy-driver\|^cargo' || true)

# median, min and max of column $1 of results.txt, in seconds
spread() {
  cut -d' ' -f"$1" "$work/results.txt" | sort -n \
    | awk -v d="${2:-1000}" '{a[NR]=$1} END {printf "%.2f s (%.2f–%.2f s)", a[int((NR+1)/2)]/d, a[1]/d, a[NR]/d}'
}
median() { cut -d' ' -f"$1" "$work/results.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]/1000}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v < t) ? "met" : "MISSED"}'; }

echo "API latency added per request: ${LATENCY_MS} ms"
echo "sync benchmark: $files manifests in Git ($NSS Namespaces, $sealed_files SealedSecrets × 3 values, $CONFIGMAPS ConfigMaps; $repo_kib KiB), one commit; $RUNS runs"
echo "build: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock || echo ' + uncommitted changes')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "load average before: $load_before (rustc/clippy/cargo processes: $rustc_before); after: $load_after ($rustc_after)"
echo "sealing $SEALED Secrets (encrypt --in-place): ${t_seal} ms"
echo
echo "cold pass (fresh server, empty cache), sync --once start to exit: median $(spread 1)  [target < 10 s: $(verdict "$(median 1)" 10)]"
echo "unchanged pass (same cache, same server):                        median $(spread 2)  [target < 2 s: $(verdict "$(median 2)" 2)]"
echo "  Git only (sync --dry-run: fetch, read, plan, unseal): empty cache $(spread 3), warm cache $(spread 4)"
echo "  the API server's CPU during the pass: cold $(spread 5 "$hz"), unchanged $(spread 6 "$hz")"
echo "  log line of the last cold pass: $(tail -1 "$work/cold-$RUNS.log")"
