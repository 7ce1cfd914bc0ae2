#!/usr/bin/env bash
# scripts/latency.sh: per-message latency impostor adds inside one SMTP session (no load).
#
# A small smtplib client opens ONE SMTP session to a private Postfix (via tests/e2e/lib.sh), says
# XCLIENT ADDR=203.0.113.7 (so impostor sees a remote client and runs every check), then sends N messages
# of the 20 KB mix of scripts/bench-milter.sh one after another and times each one:
#   data->250  from the end of the message data (CRLF.CRLF) to Postfix's final reply: this is where the
#              milter's header/body/end-of-message round trips happen
#   txn        MAIL FROM .. final reply
# for Postfix alone, Postfix + impostor inet:127.0.0.1 and Postfix + impostor unix socket, ROUNDS times
# interleaved. It also runs `smtp-source -s 1 -m N` (a new SMTP session and milter connection per
# message, as ../shared/recipes/latency.sh) per mode. Target: <= 1 ms added at p50. Prints the figures;
# fails only when a message does not get its verdict (no timing assertion), so CI runs it small.
# CORPUS=DIR: the mix is drawn from real mail (see scripts/bench-postfix.sh).
# Environment: N=200 ROUNDS=2 BUILD=1; private ports PF_PORT=2625 SINK_PORT=2626 IMPOSTOR_PORT=7457 DNS_PORT=5453
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200}; ROUNDS=${ROUNDS:-2}
export PF_PORT=${PF_PORT:-2625} SINK_PORT=${SINK_PORT:-2626} IMPOSTOR_PORT=${IMPOSTOR_PORT:-7457} DNS_PORT=${DNS_PORT:-5453}
export METRICS_PORT=${METRICS_PORT:-9457}
cd "$ROOT"
if [ "${BUILD:-1}" = 1 ]; then cargo build --release --bin impostor 2>&1 | tail -1 || exit 2; fi
export IMPOSTOR=${IMPOSTOR:-${CARGO_TARGET_DIR:-$ROOT/target}/release/impostor}
# shellcheck source=scripts/bench-milter.sh
. "$ROOT/scripts/bench-milter.sh" --lib
# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
install_deps || exit 2
e2e_init >/dev/null
trap 'rc=$?; stop_pidfile "$RUN/impostor-unix.pid"; (exit $rc); e2e_cleanup' EXIT
start_bench_stack

probe() {  # probe LABEL: one SMTP session, N messages; prints one line, appends "LABEL p50" to $RUN/p50
  python3 - "$1" "$PF_PORT" "$N" "$RUN/mix" "$RUN/p50" <<'PY'
import glob, smtplib, sys, time
label, port, n, mixdir, p50file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
msgs = []
for f in sorted(glob.glob(mixdir + "/*.eml")):
    raw = open(f, "rb").read().replace(b"\r\n", b"\n")
    env, _, rest = raw.partition(b"\n")                     # the X-Bench-Envelope line is not sent
    mf = dict(kv.split("=", 1) for kv in env.decode().split(":", 1)[1].split())["from"]
    body = b"".join(b"." + l if l.startswith(b".") else l for l in rest.splitlines(True)).replace(b"\n", b"\r\n")
    msgs.append((mf, body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"))
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.example.test")
code, _ = s.docmd("XCLIENT", "ADDR=203.0.113.7 NAME=[UNAVAILABLE]")
assert code == 220, code
s.ehlo("client.example.test")
def pct(v, q): v = sorted(v); return v[max(0, min(len(v) - 1, int(round(q * len(v) + 0.5)) - 1))]
data, txn, codes = [], [], {}
for i in range(n + 5):
    mf, body = msgs[i % len(msgs)]
    t0 = time.perf_counter()
    s.mail(mf); s.rcpt("bob@rcpt.example")
    s.putcmd("data"); code, _ = s.getreply(); assert code == 354, code
    s.send(body); t1 = time.perf_counter()
    code, _ = s.getreply(); t2 = time.perf_counter()
    if i < 5: continue                                  # warm-up: DNS cache, first milter round trips
    codes[code] = codes.get(code, 0) + 1
    data.append((t2 - t1) * 1000); txn.append((t2 - t0) * 1000)
    if code >= 400: s.rset()
s.quit()
print(f"{label:<22} data->250 ms p50 {pct(data, .5):6.2f} p90 {pct(data, .9):6.2f} p99 {pct(data, .99):6.2f} max {max(data):6.2f}"
      f"   txn ms p50 {pct(txn, .5):6.2f} p99 {pct(txn, .99):6.2f}   replies {' '.join(f'{k}x{v}' for k, v in sorted(codes.items()))}")
open(p50file, "a").write(f"{label} {pct(data, .5):.3f} {pct(txn, .5):.3f}\n")
# a regression check, not a timing one: every message gets its verdict (250, or 550 for the
# mix's reject message through impostor), never a temporary failure
bad = {k: v for k, v in codes.items() if k not in ((250,) if label == "postfix-alone" else (250, 550))}
if bad or sum(codes.values()) != n:
    print(f"{label}: unexpected replies {bad} ({sum(codes.values())} of {n} answered)", file=sys.stderr)
    sys.exit(1)
PY
}
source1() {  # source1 LABEL: smtp-source -s 1 -m N (a new SMTP session per message), ms per message
  local t0 t1; t0=$(date +%s.%N)
  local f=$RUN/mix/smtp/clean.eml from=alice@example.org
  if [ -n "${CORPUS:-}" ]; then f=$(ls "$RUN"/mix/smtp/*.eml | head -1); from=$(cat "${f%.eml}.from"); fi
  smtp-source -A -s 1 -m "$N" -F "$f" -f "$from" -t bob@rcpt.example -M client.example.test \
    "127.0.0.1:$PF_PORT" 2>>"$RUN/source.err"
  t1=$(date +%s.%N)
  awk -v l="$1" -v n="$N" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%-22s smtp-source -s 1 -m %d (first mix file): %.2f ms/msg (%.0f msg/s)\n", l, n, (t1 - t0) * 1000 / n, n / (t1 - t0) }'
}
: >"$RUN/p50"
FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
  echo "# round $round"
  set_milters "" >/dev/null;                                  probe postfix-alone || FAILED=1;  source1 postfix-alone
  set_milters "inet:127.0.0.1:$IMPOSTOR_PORT" >/dev/null;    probe impostor-inet || FAILED=1;  source1 impostor-inet
  set_milters "unix:$IMPOSTOR_SOCK" >/dev/null;               probe impostor-unix || FAILED=1;  source1 impostor-unix
  postsuper -c "$PF_CONF" -d ALL hold >/dev/null 2>&1
done
echo "# added at p50 (median over rounds of each round's p50, minus Postfix alone); target <= 1 ms"
awk '{ d[$1] = d[$1] " " $2; t[$1] = t[$1] " " $3 }
  function med(s,   a, n, i, j, x) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  END { for (m in d) if (m != "postfix-alone") printf "%-14s data->250 p50 %+.2f ms   txn p50 %+.2f ms   (postfix alone: %.2f / %.2f ms)\n", m,
          med(d[m]) - med(d["postfix-alone"]), med(t[m]) - med(t["postfix-alone"]), med(d["postfix-alone"]), med(t["postfix-alone"]) }' "$RUN/p50" | sort
[ "$FAILED" -eq 0 ] || { echo "latency probe: some messages did not get their verdict (see above)" >&2; exit 1; }
