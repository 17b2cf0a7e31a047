#!/usr/bin/env bash
# Controller benchmark (issue 13, item 6): `gitops-seal controller` in its own process against
# the standalone test API server (crates/kube-test-server).
#
#  1. idle: the controller starts with no SealedSecret, generates its identity; its resident
#     memory (VmRSS) once /readyz answers. Stopped again.
#  2. N SealedSecrets (3 values each) sealed with one `gitops-seal encrypt -R` call and applied
#     with one `kubectl apply --server-side` while no controller runs; then the controller is
#     started and timed from its start until every Secret is present with the right data and
#     until every SealedSecret is Ready=True (observedGeneration current).
#  3. CHANGES times: one SealedSecret re-sealed with a new value and applied (a server-side
#     apply PATCH), timed until its Secret holds the new value.
#  4. UNRELATED Secrets without the controller's label added across three namespaces (one
#     kubectl call); the controller's memory and CPU time before and after.
#
# Usage: bash benches/controller.sh          (N=1000 UNRELATED=10000 CHANGES=20 by default)
#        N=200 UNRELATED=2000 bash benches/controller.sh
# Needs kubectl (client only), python3 and curl. Every wait polls with a bound.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gitops-seal-target}"
N=${N:-1000}
UNRELATED=${UNRELATED:-10000}
CHANGES=${CHANGES:-20}
TIMEOUT=${TIMEOUT:-300}   # seconds, for every bounded wait

cargo build -q --release --bin gitops-seal -p gitops-seal
cargo build -q --release -p kube-test-server --bin kube-test-server
work=$(mktemp -d)
# Copies: another build in the shared target folder must not replace them mid-run.
mkdir -p "$work/bin"
cp "$CARGO_TARGET_DIR/release/gitops-seal" "$CARGO_TARGET_DIR/release/kube-test-server" "$work/bin/"
BIN="$work/bin/gitops-seal"
SERVER="$work/bin/kube-test-server"
CONCURRENCY=${CONCURRENCY:-32}   # the controller's --concurrency
server_pid=""
ctl_pid=""
stop() { # stop PID: SIGTERM, then wait for it (the controller exits on SIGTERM)
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$ctl_pid"
  stop "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now_ns() { date +%s%N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; } # the peak resident memory
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# Resident memory over 3 s (7 samples), the largest: a figure, not a synchronisation.
rss_settled() {
  local max=0 v
  for _ in 1 2 3 4 5 6 7; do
    v=$(rss_kib "$1")
    [ "$v" -gt "$max" ] && max=$v
    sleep 0.5
  done
  echo "$max"
}

cat > "$work/bench.py" <<'PY'
"""Helpers: generating manifests, polling the API server and the controller."""
import base64, json, sys, time, urllib.error, urllib.request

API = TOKEN = None
HEADERS = {}

def values(i):
    return {
        "username": f"user-{i}",
        "password": f"password-{i}-correct-horse-battery-staple",
        "url": f"postgres://user-{i}@db.apps.svc:5432/app{i}",
    }

def name(i):
    return f"s{i:05d}"

def get(path, timeout=10):
    req = urllib.request.Request(API + path, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)

def b64(s):
    return base64.b64encode(s.encode()).decode()

def deadline(seconds):
    end = time.monotonic() + seconds
    def check(what):
        if time.monotonic() > end:
            sys.exit(f"bench: timed out after {seconds} s waiting for {what}")
    return check

def secrets(n, path):
    """The N plain Secrets to seal, one multi-document stream."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name(i)}\n  namespace: apps\ntype: Opaque\nstringData:\n")
            for k, v in values(i).items():
                f.write(f"  {k}: {v}\n")

def changes(k, path):
    """K versions of Secret 0, each with a new password."""
    with open(path, "w") as f:
        for c in range(k):
            v = values(0)
            v["password"] = f"changed-{c}"
            f.write(f"---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name(0)}\n  namespace: apps\ntype: Opaque\nstringData:\n")
            for key, val in v.items():
                f.write(f"  {key}: {val}\n")

def unrelated(m, path):
    """M Secrets the controller must not care about (no managed-by label), ~0.5 KiB each."""
    nss = ["apps", "other", "gitops-seal"]
    with open(path, "w") as f:
        for i in range(m):
            f.write(f"---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: unrelated-{i:05d}\n  namespace: {nss[i % 3]}\n  labels:\n    app: unrelated\ntype: Opaque\ndata:\n")
            for k in range(3):
                f.write(f"  key{k}: {b64(f'unrelated-{i}-{k}-' + 'x' * 100)}\n")

def metric(metrics_url, name_):
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name_ + " "):
                    return float(line.split()[1])
    except (urllib.error.URLError, ConnectionError, OSError):
        return None
    return None

def all_secrets_right(n):
    items = get("/api/v1/namespaces/apps/secrets?labelSelector=gitops-seal.dev%2Fmanaged-by%3Dcontroller")["items"]
    by_name = {o["metadata"]["name"]: o.get("data", {}) for o in items}
    for i in range(n):
        d = by_name.get(name(i))
        if d is None or d != {k: b64(v) for k, v in values(i).items()}:
            return False
    return True

def all_ready(n):
    items = get("/apis/gitops-seal.dev/v1/namespaces/apps/sealedsecrets")["items"]
    ready = 0
    for o in items:
        st = o.get("status") or {}
        gen = o["metadata"].get("generation")
        for c in st.get("conditions", []):
            if c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == gen:
                ready += 1
    return ready >= n

def converge(n, t0_ns, metrics_url, timeout):
    """Polls (every 20 ms) the controller's managed-Secrets gauge; once it reaches N, checks
    every Secret's data through the API; then waits for every Ready=True. Prints the seconds
    from t0 (the controller's start) to each."""
    check = deadline(timeout)
    while True:
        g = metric(metrics_url, "gitops_seal_managed_secrets")
        if g is not None and g >= n and all_secrets_right(n):
            t_secrets = (time.time_ns() - t0_ns) / 1e9
            break
        check("all Secrets")
        time.sleep(0.02)
    while not all_ready(n):
        check("all SealedSecrets Ready")
        time.sleep(0.05)
    t_ready = (time.time_ns() - t0_ns) / 1e9
    print(f"{t_secrets:.3f} {t_ready:.3f}")

def change(sealed_path, timeout):
    """Applies each sealed version of SealedSecret 0 (server-side apply) and polls its Secret
    every 2 ms until it holds the new password; prints the latencies in ms, one per line."""
    docs = [d for d in open(sealed_path).read().split("\n---\n") if "kind: SealedSecret" in d]
    url = f"/apis/gitops-seal.dev/v1/namespaces/apps/sealedsecrets/{name(0)}?fieldManager=bench&force=true"
    for c, doc in enumerate(docs):
        want = b64(f"changed-{c}")
        check = deadline(timeout)
        req = urllib.request.Request(API + url, data=doc.encode(), method="PATCH", headers={
            "Authorization": "Bearer " + TOKEN, "Content-Type": "application/apply-patch+yaml"})
        t0 = time.monotonic_ns()
        with urllib.request.urlopen(req, timeout=10) as r:
            gen = json.load(r)["metadata"]["generation"]
        while get(f"/api/v1/namespaces/apps/secrets/{name(0)}").get("data", {}).get("password") != want:
            check("the changed Secret")
            time.sleep(0.002)
        print(f"{(time.monotonic_ns() - t0) / 1e6:.1f}", flush=True)
        # Let the status write land before the next change, so each change starts from rest.
        while True:
            o = get(f"/apis/gitops-seal.dev/v1/namespaces/apps/sealedsecrets/{name(0)}")
            conds = (o.get("status") or {}).get("conditions", [])
            if any(x["type"] == "Ready" and x["status"] == "True" and x.get("observedGeneration") == gen for x in conds):
                break
            check("the changed SealedSecret's status")
            time.sleep(0.005)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd in ("converge", "change"):
        API, TOKEN = args[0], args[1]
        args = args[2:]
    if cmd == "secrets":
        secrets(int(args[0]), args[1])
    elif cmd == "changes":
        changes(int(args[0]), args[1])
    elif cmd == "unrelated":
        unrelated(int(args[0]), args[1])
    elif cmd == "converge":
        converge(int(args[0]), int(args[1]), args[2], float(args[3]))
    elif cmd == "change":
        change(args[0], float(args[1]))
PY
py() { python3 "$work/bench.py" "$@"; }

# --- the API server ----------------------------------------------------------------------------
port=$(free_port)
"$SERVER" --listen "127.0.0.1:$port" --kubeconfig "$work/kubeconfig" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q serving "$work/server.log" && break; sleep 0.05; done
grep -q serving "$work/server.log" || { cat "$work/server.log"; echo "bench: the test API server did not start" >&2; exit 1; }
export KUBECONFIG="$work/kubeconfig"
API="http://127.0.0.1:$port"
TOKEN=$(awk '/token:/ {print $2}' "$KUBECONFIG")
K() { kubectl --kubeconfig "$KUBECONFIG" "$@"; }
"$BIN" controller --print-crd > "$work/crd.yaml"
K apply --server-side --validate=false -f "$work/crd.yaml" > /dev/null
for ns in gitops-seal apps other; do
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$ns"
  echo ---
done | K apply --server-side --validate=false -f - > /dev/null

ctl_port=$(free_port)
METRICS="http://127.0.0.1:$ctl_port/metrics"
start_controller() {
  "$BIN" controller --namespace gitops-seal --kubeconfig "$KUBECONFIG" --concurrency "$CONCURRENCY" \
    --listen "127.0.0.1:$ctl_port" >> "$work/controller.log" 2>&1 &
  ctl_pid=$!
}
wait_ready() {
  for _ in $(seq $((TIMEOUT * 20))); do
    curl -sf "http://127.0.0.1:$ctl_port/readyz" > /dev/null 2>&1 && return 0
    kill -0 "$ctl_pid" 2>/dev/null || { cat "$work/controller.log"; echo "bench: the controller exited" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: the controller was not ready within $TIMEOUT s" >&2; exit 1
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rustc_before=$(ps -eo comm= | grep -c '^rustc\|^clippy-driver' || true)

# --- 1. idle ----------------------------------------------------------------------------------
t0=$(now_ns)
start_controller
wait_ready
t_ready_idle=$(( ($(now_ns) - t0) / 1000000 ))
rss_idle=$(rss_settled "$ctl_pid")
"$BIN" recipient --fetch --kubeconfig "$KUBECONFIG" --namespace gitops-seal \
  | grep -v '^#' > "$work/recipients.txt"
stop "$ctl_pid"; ctl_pid=""

# --- 2. N SealedSecrets, then the controller's start ------------------------------------------
py secrets "$N" "$work/plain.yaml"
t=$(now_ns)
"$BIN" encrypt -R "$work/recipients.txt" "$work/plain.yaml" > "$work/sealed.yaml"
t_seal=$(( ($(now_ns) - t) / 1000000 ))
t=$(now_ns)
K apply --server-side --validate=false -f "$work/sealed.yaml" > /dev/null
t_apply=$(( ($(now_ns) - t) / 1000000 ))

server_cpu0=$(cpu_ticks "$server_pid")
t0=$(now_ns)
start_controller
py converge "$API" "$TOKEN" "$N" "$t0" "$METRICS" "$TIMEOUT" > "$work/converge.txt"
read -r t_secrets t_all_ready < "$work/converge.txt"
reconciles=$(curl -sf "$METRICS" | awk '/^gitops_seal_reconcile_duration_seconds_count / {print $2}')
reconcile_sum=$(curl -sf "$METRICS" | awk '/^gitops_seal_reconcile_duration_seconds_sum / {print $2}')
cpu_converge=$(cpu_ticks "$ctl_pid")
server_cpu=$(( $(cpu_ticks "$server_pid") - server_cpu0 ))
rss_n=$(rss_settled "$ctl_pid")
hwm_n=$(hwm_kib "$ctl_pid")

# --- 3. one SealedSecret's change to its Secret's ----------------------------------------------
py changes "$CHANGES" "$work/changes-plain.yaml"
"$BIN" encrypt -R "$work/recipients.txt" "$work/changes-plain.yaml" > "$work/changes.yaml"
py change "$API" "$TOKEN" "$work/changes.yaml" "$TIMEOUT" > "$work/latencies.txt"
lat_sorted=$(sort -n "$work/latencies.txt")
lat_min=$(head -1 <<< "$lat_sorted")
lat_med=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' <<< "$lat_sorted")
lat_max=$(tail -1 <<< "$lat_sorted")

# --- 4. unrelated Secrets ----------------------------------------------------------------------
rss_before=$(rss_settled "$ctl_pid")
cpu_before=$(cpu_ticks "$ctl_pid")
py unrelated "$UNRELATED" "$work/unrelated.yaml"
t=$(now_ns)
K apply --server-side --validate=false -f "$work/unrelated.yaml" > /dev/null
t_unrelated=$(( ($(now_ns) - t) / 1000000 ))
cpu_after=$(cpu_ticks "$ctl_pid")
rss_unrelated=$(rss_settled "$ctl_pid")
count=$(K get secrets -A --no-headers 2>/dev/null | wc -l)

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
hz=$(getconf CLK_TCK)
growth=$(awk -v a="$rss_before" -v b="$rss_unrelated" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v < t) ? "met" : "MISSED"}'; }

echo "controller benchmark: N=$N SealedSecrets (3 values), UNRELATED=$UNRELATED Secrets, CHANGES=$CHANGES"
echo "build: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock || echo ' + uncommitted changes')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "load average before: $load_before (rustc/clippy processes: $rustc_before); after: $load_after"
echo
echo "idle (no SealedSecret): ready ${t_ready_idle} ms after start; VmRSS $(mib "$rss_idle") MiB  [target < 30 MiB: $(verdict "$(mib "$rss_idle")" 30)]"
echo "sealing $N Secrets (one encrypt call): ${t_seal} ms; kubectl apply of $N SealedSecrets: ${t_apply} ms"
echo "controller start -> all $N Secrets present with the right data: ${t_secrets} s  [target < 10 s: $(verdict "$t_secrets" 10)]"
echo "controller start -> all $N SealedSecrets Ready=True: ${t_all_ready} s"
echo "  reconciles: $reconciles, summed reconcile time $(printf "%.1f" "$reconcile_sum") s; controller CPU at that point $(awk -v t="$cpu_converge" -v h="$hz" 'BEGIN {printf "%.2f", t / h}') s, the API server's meanwhile $(awk -v t="$server_cpu" -v h="$hz" 'BEGIN {printf "%.2f", t / h}') s"
echo "one SealedSecret changed -> its Secret changed ($CHANGES changes): median ${lat_med} ms, min ${lat_min} ms, max ${lat_max} ms"
echo "  all, sorted: $(tr '\n' ' ' <<< "$lat_sorted")"
echo "VmRSS with $N SealedSecrets: $(mib "$rss_n") MiB (peak VmHWM $(mib "$hwm_n") MiB); after the changes: $(mib "$rss_before") MiB"
echo "VmRSS with $UNRELATED unrelated Secrets added ($count Secrets in the server; applied in ${t_unrelated} ms): $(mib "$rss_unrelated") MiB (${growth} %)  [flat within 10 %: $(awk -v g="$growth" 'BEGIN {print (g < 10 && g > -10) ? "met" : "MISSED"}')]"
echo "  controller CPU while they were added: $(awk -v a="$cpu_before" -v b="$cpu_after" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}') s"
