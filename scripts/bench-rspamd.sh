#!/usr/bin/env bash
# scripts/bench-rspamd.sh: rspamd's milter (the rspamd_proxy worker in milter mode, Debian's `rspamd`
# package) measured with impostor's own load driver, for a side-by-side figure with scripts/bench-milter.sh.
#
#   installs rspamd if missing (without redis; nothing started), starts a loopback dnsmasq with the
#   mix's records (MIX_DNS of bench-milter.sh), then a private rspamd instance: a copy of /etc/rspamd
#   under $RUN with its own dbdir/rundir/log, proxy (milter) on 127.0.0.1:$RSPAMD_PORT forwarding to the
#   normal workers on :$((RSPAMD_PORT+1)), controller on :$((RSPAMD_PORT+2)), fuzzy_check off (its
#   rspamd.com upstreams would be resolved by the system resolver), every other DNS lookup (RBLs, SPF,
#   DKIM, DMARC, HTTP maps) only via the loopback dnsmasq, so nothing leaves the machine. It waits for
#   the hyperscan regexp cache to be compiled and loaded, warms up, then runs milter-bench loaded
#   (CONNS connections, PER_CONN messages each) and sequential (1 connection), and prints msgs/s, the
#   end-of-message reply latency p50/p99/max, rspamd's CPU per message (all its processes: main,
#   proxy, normal workers, controller, hs_helper), DNS queries per message, errors and final replies.
#   Everything started is stopped by PID.
#
# The mix: the 20 synthesized ~20 KB messages of `scripts/bench-milter.sh --mix-only`. milter-bench
# must be built already (cargo build --release -p milter-bench; this script does not build).
# Environment: CONNS=20 N=4000 PER_CONN=10 WARMUP=200 SEQ_N=500 OUT=file.jsonl
#   ports (private): RSPAMD_PORT=11432 (+1 normal, +2 controller) DNS_PORT=5463
#   RSPAMD_WORKERS= (normal workers; default rspamd's own: max(1, CPUs - 2)) HS_WAIT=300 (seconds to
#   wait for the hyperscan cache) E2E_KEEP=1 keeps $RUN (rspamd config and log, dnsmasq.log)
# Needs root (installs the package; rspamd drops to _rspamd).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNS=${CONNS:-20}; N=${N:-4000}; PER_CONN=${PER_CONN:-10}; WARMUP=${WARMUP:-200}; SEQ_N=${SEQ_N:-500}
RSPAMD_PORT=${RSPAMD_PORT:-11432}; export DNS_PORT=${DNS_PORT:-5463}
BENCH=${BENCH:-${CARGO_TARGET_DIR:-$ROOT/target}/release/milter-bench}
cd "$ROOT"
# shellcheck source=scripts/bench-milter.sh
. "$ROOT/scripts/bench-milter.sh" --lib          # make_mix, MIX_DNS
# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
[ -x "$BENCH" ] || die "no milter-bench at $BENCH (cargo build --release -p milter-bench)"
[ "$(id -u)" -eq 0 ] || die "must run as root"
if ! command -v rspamd >/dev/null 2>&1; then
  say "installing rspamd"
  apt-cache show rspamd >/dev/null 2>&1 || apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rspamd </dev/null || die "apt-get install rspamd failed"
  # the package may start and enable the system instance (where policy-rc.d allows): stop it, by its PID
  if [ -s /run/rspamd/rspamd.pid ] && kill -0 "$(cat /run/rspamd/rspamd.pid)" 2>/dev/null; then
    say "stopping the system rspamd the package started (pid $(cat /run/rspamd/rspamd.pid))"
    kill -TERM "$(cat /run/rspamd/rspamd.pid)"; sleep 2
  fi
  systemctl disable rspamd >/dev/null 2>&1 || true
fi
[ -x /usr/sbin/dnsmasq ] || die "dnsmasq missing (apt-get install dnsmasq-base)"
e2e_init >/dev/null
RSPAMD_PID=
stop_rspamd() {  # SIGTERM the main process (it stops its workers), then any worker left, by PID
  [ -n "$RSPAMD_PID" ] || return 0
  local kids k; kids=$(pgrep -P "$RSPAMD_PID")
  stop_pidfile "$RUN/rspamd.pid"
  for k in $kids; do kill -0 "$k" 2>/dev/null && kill -KILL "$k"; done
  RSPAMD_PID=
}
trap 'rc=$?; stop_rspamd; (exit $rc); e2e_cleanup' EXIT

MIX=$RUN/mix; make_mix "$MIX"; rm -rf "$MIX/smtp"
start_dns "${MIX_DNS[@]}" >/dev/null || die "dnsmasq did not start"
for p in "$RSPAMD_PORT" $((RSPAMD_PORT + 1)) $((RSPAMD_PORT + 2)); do port_free "$p" || die "port $p busy"; done

# The private configuration: Debian's /etc/rspamd copied, its local.d/override.d emptied (so this
# machine's local settings do not count), and our overrides (override.d: priority 10, replaces keys).
R=$RUN/rspamd; E=$R/etc
mkdir -p "$R/db" "$R/run" "$R/log"; cp -a /etc/rspamd "$E"
rm -rf "$E/local.d" "$E/override.d" "$E"/rspamd.conf.local*; mkdir -p "$E/local.d" "$E/override.d"
chown -R _rspamd:_rspamd "$R/db" "$R/run" "$R/log"
cat >"$E/override.d/worker-proxy.inc" <<EOF
bind_socket = "127.0.0.1:$RSPAMD_PORT";
upstream "local" { default = yes; hosts = "127.0.0.1:$((RSPAMD_PORT + 1))"; }
EOF
echo "bind_socket = \"127.0.0.1:$((RSPAMD_PORT + 1))\";" >"$E/override.d/worker-normal.inc"
echo "bind_socket = \"127.0.0.1:$((RSPAMD_PORT + 2))\";" >"$E/override.d/worker-controller.inc"
echo 'enabled = false;' >"$E/local.d/fuzzy_check.conf"
echo "dns { nameserver = [\"127.0.0.1:$DNS_PORT\"]; }" >"$E/local.d/options.inc"
[ -z "${RSPAMD_WORKERS:-}" ] || echo "count = $RSPAMD_WORKERS;" >>"$E/override.d/worker-normal.inc"
VARS=(--var "CONFDIR=$E" --var "LOCAL_CONFDIR=$E" --var "DBDIR=$R/db" --var "RUNDIR=$R/run" --var "LOGDIR=$R/log")
LOG=$R/log/rspamd.log

others=$(pgrep -d ' ' -x rspamd) && say "warning: rspamd already running here (pids $others): it shares the CPUs"
# rspamd in the foreground (-f), its main process our child; it forks the workers
rspamd -f -u _rspamd -g _rspamd -c "$E/rspamd.conf" "${VARS[@]}" </dev/null >"$R/stdout.log" 2>&1 &
RSPAMD_PID=$!; echo "$RSPAMD_PID" >"$RUN/rspamd.pid"
# loading the configuration (lua plugins, TLD list) takes a while: up to 120 s for all three ports
for ((i = 0; i < 1200; i++)); do
  kill -0 "$RSPAMD_PID" 2>/dev/null || { tail -n 20 "$R/stdout.log" "$LOG" >&2; die "rspamd exited"; }
  port_listening "$RSPAMD_PORT" && port_listening $((RSPAMD_PORT + 1)) && port_listening $((RSPAMD_PORT + 2)) && break; sleep 0.1
done
port_listening "$RSPAMD_PORT" || die "rspamd's milter port $RSPAMD_PORT not listening after 120 s (see $R)"
say "rspamd $(rspamd --version | awk '{print $NF}') pid $RSPAMD_PID: milter 127.0.0.1:$RSPAMD_PORT, config $E"
# hyperscan: hs_helper compiles the regexp cache in the background (a few CPU seconds); scanning
# before the normal workers have loaded it is slower, so wait for every normal worker's notice
nw=$(pgrep -c -P "$RSPAMD_PID" -f 'normal process'); [ "$nw" -ge 1 ] || nw=1
for ((i = 0; i < ${HS_WAIT:-300}; i++)); do
  n=$(grep -cE '\(normal\).* hyperscan database of [0-9]+ regexps has been loaded' "$LOG" 2>/dev/null)
  [ "${n:-0}" -ge "$nw" ] && break; sleep 1
done
say "hyperscan regexp cache loaded by ${n:-0} of $nw normal workers after $i s; $(grep -oE 'compiled [0-9]+ regular expressions to the hyperscan tree' "$LOG" | tail -n 1)"
"$BENCH" --socket "inet:127.0.0.1:$RSPAMD_PORT" -c 4 -n "$WARMUP" --per-conn 50 "$MIX" >/dev/null || die "warm-up failed (see $LOG)"

# CPU ticks of rspamd: main + live children, plus main's reaped children (cutime+cstime)
cpu_ticks() {
  local t=0 p
  for p in $(pgrep -P "$RSPAMD_PID"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo $((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$RSPAMD_PID/stat")))
}
# queries reaching dnsmasq: query[T] (REFUSED: other TLDs) and auth[T] (answered from the auth zones)
dns_queries() { local n; n=$(grep -cE '(query|auth)\[' "$RUN/dnsmasq.log" 2>/dev/null); echo "${n:-0}"; }
foreign() { pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld|gcc|clang' 2>/dev/null || true; }
export RESULTS=${OUT:-$RUN/results.jsonl}; : >"$RESULTS"
# run_one LABEL ARGS...: milter-bench --json; one summary line, the JSON appended to $RESULTS
run_one() {
  local label=$1 c0 c1 q0 q1 f j; shift
  c0=$(cpu_ticks); q0=$(dns_queries); f=$(foreign)
  j=$("$BENCH" --json --socket "inet:127.0.0.1:$RSPAMD_PORT" "$@" "$MIX") || echo "milter-bench failed: $j" >&2
  c1=$(cpu_ticks); q1=$(dns_queries); f=$(( f > $(foreign) ? f : $(foreign) ))
  python3 - "$label" "$((c1 - c0))" "$((q1 - q0))" "$f" "$j" <<'PY'
import json, sys, os
label, ticks, q, foreign, j = sys.argv[1:6]
r = json.loads(j); n = max(r["messages_with_final_reply"], 1); hz = os.sysconf("SC_CLK_TCK"); e = r["eom_ms"]
cpu = int(ticks) / hz / n * 1000
print(f"{label:<30} {r['msgs_per_sec']:>7.0f} msgs/s  eom p50 {e['p50']:.3f} p99 {e['p99']:.3f} max {e['max']:.3f} ms"
      f"  rspamd cpu {cpu:.3f} ms/msg  dns {int(q) / n:.2f} q/msg  errors {r['errors']}"
      f"  replies {' '.join(f'{k}={v}' for k, v in r['final_replies'].items())}"
      f"  actions {' '.join(f'{k}={v}' for k, v in r['actions'].items())}" + ("  CONTAMINATED(compiler running)" if int(foreign) else ""))
r.update(label=label, rspamd_cpu_ms_per_msg=cpu, dns_queries_per_msg=int(q) / n)
with open(os.environ["RESULTS"], "a") as f: f.write(json.dumps(r) + "\n")
PY
}
run_one "rspamd c=$CONNS per-conn=$PER_CONN n=$N" -c "$CONNS" -n "$N" --per-conn "$PER_CONN"
run_one "rspamd c=1 sequential n=$SEQ_N" -c 1 -n "$SEQ_N" --per-conn 100
say "rspamd's own verdicts (its log, warm-up included): $(grep -oE '\(default: [TF] \([a-z ]+\)' "$LOG" | sed -E 's/.*\((.*)\)/\1/' | sort | uniq -c | sed -E 's/^ *([0-9]+) (.*)/\2=\1,/' | tr -d '\n')"
say "DNS names rspamd asked dnsmasq most: $(grep -oE '(query|auth)\[[A-Z]+\] [^ ]+' "$RUN/dnsmasq.log" | sed -E 's/ [^.]+\./ *./' | sort | uniq -c | sort -rn | head -n 6 | tr -s ' \n' ' ')"
say "results (JSON lines): $RESULTS"
