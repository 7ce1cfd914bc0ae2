#!/usr/bin/env bash
# scripts/bench-milter.sh [CORPUS_DIR]: impostor's own throughput and end-of-message latency, measured
# with milter-bench (tools/milter-bench, a workspace member) playing the MTA, without Postfix in the way.
#
#   builds the release binaries, starts a loopback dnsmasq (SPF/DMARC records for the mix's senders,
#   long TTLs so impostor's resolver cache stays warm), then for impostor on a unix socket and on
#   inet 127.0.0.1: a warm-up, a loaded run (CONNS connections) and a one-connection run, and prints
#   msgs/s, the end-of-message reply latency p50/p99/max, impostor's CPU per message, its peak RSS
#   (VmHWM) and how many DNS queries reached dnsmasq per message. Everything started is stopped by PID.
#
# The message mix: without CORPUS_DIR, 20 synthesized ~20 KB messages (14 clean, 3 tag, 2 quarantine,
# 1 reject, like tests/e2e/msgs, plain and HTML); with CORPUS_DIR (e.g. ../shared/corpus), up to MIX_N
# .eml files found under it. `scripts/bench-milter.sh --mix-only DIR` only writes the synthesized mix.
#
# Environment: CONNS=20 N=20000 PER_CONN=10 WARMUP=500 SEQ_N=2000 MIX_N=400 BUILD=1 OUT=file.json
#   WORKERS=N: impostor's milter.worker_threads (default 0 = half the CPUs)
#   ports (private, so it can run beside tests/e2e): IMPOSTOR_PORT=7457 DNS_PORT=5453 METRICS_PORT=9457
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# make_mix DIR: the synthesized 20 KB mix, with X-Bench-Envelope lines (milter-bench) and one
# file per kind without them for smtp-source (DIR/smtp/KIND.eml, used by bench-postfix.sh/latency.sh).
make_mix() {
  python3 - "$1" <<'PY'
import os, sys, random
out = sys.argv[1]; os.makedirs(out + "/smtp", exist_ok=True)
rnd = random.Random(7)
words = ("the quarterly report is attached please review before Friday meeting notes from our team project "
         "schedule budget update customer feedback thanks regards shipment warehouse delivery agenda minutes "
         "draft version final comments lunch table invoice account settings").split()
def filler(n):
    lines, line, size = [], [], 0
    while size < n:
        w = rnd.choice(words); line.append(w); size += len(w) + 1
        if sum(len(x) + 1 for x in line) > 70: lines.append(" ".join(line)); line = []
    lines.append(" ".join(line)); return "\r\n".join(lines) + "\r\n"
KINDS = {  # kind: (From, MAIL FROM, Subject, closing text)
 "clean":      ('Alice Martin <alice@example.org>', 'alice@example.org', 'Lunch on Friday', 'Alice'),
 "tag":        ('"OpenAI Billing" <billing@example.net>', 'billing@example.net', 'Your invoice', 'Billing Team'),
 "quarantine": ('"OpenAI Security" <security@mail-notify.example>', 'security@mail-notify.example',
                'OpenAI: unusual sign-in to your account', 'The Security Team'),
 "reject":     ('"OpenAI Security" <security@openai-help.net>', 'security@openai-help.net', 'OpenAI API key revoked',
                'OpenAI Trust & Safety\r\nTo restore access to the API, confirm your billing details here:\r\nhttps://openai-help.net/restore-key'),
}
plan = ["clean"] * 14 + ["tag"] * 3 + ["quarantine"] * 2 + ["reject"]
def message(kind, i, html):
    frm, mf, subj, sign = KINDS[kind]
    h = (f"From: {frm}\r\nTo: Bob Lee <bob@rcpt.example>\r\nSubject: {subj}\r\n"
         f"Date: Tue, 24 Nov 2026 09:{i % 60:02d}:44 +0000\r\nMessage-ID: <bench-{kind}-{i}@{mf.split('@')[1]}>\r\nMIME-Version: 1.0\r\n")
    if html:
        b = "alt-%d" % i
        text = filler(7000) + "\r\n" + sign + "\r\n"
        body = (f"Content-Type: multipart/alternative; boundary=\"{b}\"\r\n\r\n--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
                f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n")
        while len(h) + len(body) < 20 * 1024 - 200:
            body += f'<p><a href="https://www.example.org/n/{rnd.randint(1, 9999)}">{filler(300).strip()}</a></p>\r\n'
        body += f"<p>{sign}</p></body></html>\r\n--{b}--\r\n"
    else:
        body = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHello Bob,\r\n\r\n"
        body += filler(20 * 1024 - len(h) - len(body) - len(sign) - 10) + "\r\n" + sign + "\r\n"
    return mf, h + body
for i, kind in enumerate(plan):
    mf, m = message(kind, i, html=(kind == "clean" and i % 2 == 1))
    with open(f"{out}/{i:02d}-{kind}.eml", "w", newline="") as f:
        f.write(f"X-Bench-Envelope: ip=203.0.113.7 helo=mail.{mf.split('@')[1]} from={mf} to=bob@rcpt.example\r\n" + m)
    if not os.path.exists(f"{out}/smtp/{kind}.eml"):
        with open(f"{out}/smtp/{kind}.eml", "w", newline="") as f:
            f.write(m.replace("\r\n", "\n"))   # smtp-source -F appends CRLF to every line
        with open(f"{out}/smtp/{kind}.from", "w") as f:
            f.write(mf + "\n")
PY
}
# DNS records for the mix's senders (dnsmasq args): the clean sender passes SPF and DMARC (p=none);
# the tag and quarantine senders publish nothing (as in tests/e2e/postfix.sh); the reject sender's SPF
# does not allow the client; openai.com publishes p=reject. Every other name is NXDOMAIN.
MIX_DNS=(
  "--txt-record=example.org,v=spf1 ip4:203.0.113.0/24 -all" "--txt-record=_dmarc.example.org,v=DMARC1; p=none"
  "--txt-record=openai-help.net,v=spf1 ip4:198.51.100.0/24 -all"
  "--txt-record=openai.com,v=spf1 -all" "--txt-record=_dmarc.openai.com,v=DMARC1; p=reject"
  # Authoritative for these TLDs, so NXDOMAIN carries an SOA, as a real resolver's does: without it
  # (plain --address=/#/) hickory does not cache negative answers and every message re-asks its
  # _dmarc names. Names under other TLDs get REFUSED (a DNS temperror for impostor).
  --auth-server=ns.bench.test,127.0.0.1 --auth-soa=1,hostmaster.bench.test,1200,180,1209600 --auth-ttl=3600
  --auth-zone=example --auth-zone=test --auth-zone=invalid --auth-zone=com --auth-zone=net --auth-zone=org
  --auth-zone=edu --auth-zone=gov --auth-zone=io --auth-zone=info --auth-zone=biz --auth-zone=co --auth-zone=us
  --auth-zone=uk --auth-zone=de --auth-zone=fr --auth-zone=nl --auth-zone=ie --auth-zone=jp --auth-zone=ca
  --auth-zone=au --auth-zone=ch --auth-zone=it --auth-zone=es --auth-zone=se --auth-zone=br --auth-zone=in --auth-zone=ru
)

# start_bench_stack: for bench-postfix.sh and latency.sh (lib.sh sourced, e2e_init done): the mix in
# $RUN/mix, the loopback DNS, smtp-sink without dumping (2000 x 20 KB would measure the disk),
# impostor on unix ($RUN/impostor-unix.pid) and on inet ($RUN/impostor.pid), Postfix without milter.
# CORPUS=DIR (bench-postfix.sh, latency.sh): the mix is drawn from real .eml files under DIR instead
# (scripts/corpus-mix.py: N=12 messages of 2-60 KB, >= HTML_PCT=40 % of them HTML; its make-up is printed).
start_bench_stack() {
  if [ -n "${CORPUS:-}" ]; then
    # shellcheck disable=SC2086 # CORPUS may name several directories
    python3 "$ROOT/scripts/corpus-mix.py" $CORPUS "$RUN/mix" 2>&1 | tee "$RUN/mix.txt" >&2
    [ -s "$RUN/mix/manifest.tsv" ] || die "CORPUS=$CORPUS: no mix"
  else
    make_mix "$RUN/mix"
  fi
  start_dns "${MIX_DNS[@]}" >/dev/null || die "dnsmasq did not start"
  /usr/sbin/smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1000 </dev/null >"$RUN/sink.log" 2>&1 &
  echo $! >"$RUN/sink.pid"; wait_port "$SINK_PORT" || die "smtp-sink did not start"
  write_conf "$RUN/unix.toml" '[milter]' 'socket_group = "postfix"' "${WORKERS:+worker_threads = $WORKERS}"
  start_impostor -c "$RUN/unix.toml" --socket "unix:$IMPOSTOR_SOCK" >/dev/null || die "impostor (unix) did not start"
  mv "$RUN/impostor.pid" "$RUN/impostor-unix.pid"
  METRICS_PORT=$((METRICS_PORT + 1)) write_conf "$RUN/inet.toml" '[milter]' "${WORKERS:+worker_threads = $WORKERS}"
  start_impostor -c "$RUN/inet.toml" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" >/dev/null || die "impostor (inet) did not start"
  MILTERS=none start_postfix >/dev/null || die "Postfix did not start"
}

if [ "${1:-}" = --mix-only ]; then make_mix "${2:?DIR}"; exit; fi
# when sourced by bench-postfix.sh / latency.sh, stop here
return 0 2>/dev/null || true

CORPUS=${1:-}
CONNS=${CONNS:-20}; N=${N:-20000}; PER_CONN=${PER_CONN:-10}; WARMUP=${WARMUP:-500}; SEQ_N=${SEQ_N:-2000}; MIX_N=${MIX_N:-400}
export IMPOSTOR_PORT=${IMPOSTOR_PORT:-7457} DNS_PORT=${DNS_PORT:-5453} METRICS_PORT=${METRICS_PORT:-9457}
cd "$ROOT"
if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release -p impostor -p milter-bench 2>&1 | tail -2 || exit 2
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
export IMPOSTOR=${IMPOSTOR:-$TARGET/impostor}
BENCH=$TARGET/milter-bench
[ -x "$BENCH" ] || { echo "bench-milter: no milter-bench at $BENCH (cargo build --release -p milter-bench)" >&2; exit 2; }
# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
e2e_init >/dev/null

MIX=$RUN/mix
if [ -n "$CORPUS" ]; then
  mkdir -p "$MIX"
  total=$(find "$CORPUS" -type f -name '*.eml' | wc -l); step=$(( (total + MIX_N - 1) / MIX_N )); [ "$step" -ge 1 ] || step=1
  find "$CORPUS" -type f -name '*.eml' | sort | awk -v s="$step" 'NR % s == 0' | head -n "$MIX_N" | while read -r f; do
    ln -s "$(readlink -f "$f")" "$MIX/$(echo "$f" | tr '/' '_')"; done
else
  make_mix "$MIX"
fi
say "mix: $(find "$MIX" -maxdepth 1 \( -type f -o -type l \) | wc -l) messages, $(du -shL "$MIX" | cut -f1) ($MIX)"
start_dns "${MIX_DNS[@]}" >/dev/null || die "dnsmasq did not start"
CONF=$RUN/impostor.toml
write_conf "$CONF" '[milter]' "${WORKERS:+worker_threads = $WORKERS}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$1/status"; }
dns_queries() { local n; n=$(grep -cE 'query\[|auth\[' "$RUN/dnsmasq.log" 2>/dev/null); echo "${n:-0}"; }
# busy%: what share of the two CPUs something else uses right now (a concurrent cargo build spoils runs)
foreign() { pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld|gcc|clang' 2>/dev/null || true; }

# run_one LABEL ARGS...: milter-bench with --json; prints one summary line, appends the JSON to $RUN/results
run_one() {
  local label=$1; shift
  local pid c0 c1 q0 q1 f j
  pid=$(cat "$RUN/impostor.pid"); c0=$(cpu_ticks "$pid"); q0=$(dns_queries); f=$(foreign)
  j=$("$BENCH" --json "$@" "$MIX") || { echo "milter-bench failed: $j" >&2; }
  c1=$(cpu_ticks "$pid"); q1=$(dns_queries)
  f=$(( f > $(foreign) ? f : $(foreign) ))
  python3 - "$label" "$((c1 - c0))" "$((q1 - q0))" "$(hwm "$pid")" "$f" "$j" <<'PY'
import json, sys, os
label, ticks, q, rss, foreign, j = sys.argv[1:7]
r = json.loads(j); n = max(r["messages_with_final_reply"], 1); hz = os.sysconf("SC_CLK_TCK")
e = r["eom_ms"]
print(f"{label:<34} {r['msgs_per_sec']:>7.0f} msgs/s  eom p50 {e['p50']:.3f} p99 {e['p99']:.3f} max {e['max']:.3f} ms"
      f"  impostor cpu {int(ticks) / hz / n * 1000:.3f} ms/msg  VmHWM {rss}  dns {int(q) / n:.2f} q/msg"
      f"  errors {r['errors']}  replies {' '.join(f'{k}={v}' for k, v in r['final_replies'].items())}"
      f"  actions {' '.join(f'{k}={v}' for k, v in r['actions'].items())}" + ("  CONTAMINATED(compiler running)" if int(foreign) else ""))
r["label"] = label; r["impostor_cpu_ms_per_msg"] = int(ticks) / hz / n * 1000; r["impostor_vmhwm"] = rss; r["dns_queries_per_msg"] = int(q) / n
with open(os.environ["RESULTS"], "a") as f: f.write(json.dumps(r) + "\n")
PY
}
export RESULTS=${OUT:-$RUN/results.jsonl}
: >"$RESULTS"
for sock in "unix:$IMPOSTOR_SOCK" "inet:127.0.0.1:$IMPOSTOR_PORT"; do
  start_impostor -c "$CONF" --socket "$sock" >/dev/null || die "impostor did not start on $sock"
  "$BENCH" --socket "$sock" -c 4 -n "$WARMUP" --per-conn 50 "$MIX" >/dev/null || die "warm-up against $sock failed"
  run_one "${sock%%:*} c=$CONNS per-conn=$PER_CONN n=$N" --socket "$sock" -c "$CONNS" -n "$N" --per-conn "$PER_CONN"
  run_one "${sock%%:*} c=$CONNS per-conn=1 n=$((N / 4))" --socket "$sock" -c "$CONNS" -n "$((N / 4))" --per-conn 1
  run_one "${sock%%:*} c=1 sequential n=$SEQ_N" --socket "$sock" -c 1 -n "$SEQ_N" --per-conn 100
  stop_impostor
done
# memory: 200 concurrent connections each carrying a 1 MB message (text + base64 attachment)
if [ "${RSS_1M:-1}" = 1 ]; then
  mkdir -p "$RUN/big"
  python3 - "$RUN/big/1m.eml" <<'PY'
import sys, base64, random
r = random.Random(3)
blob = base64.encodebytes(bytes(r.getrandbits(8) for _ in range(760 * 1024))).decode().replace("\n", "\r\n")
m = ("X-Bench-Envelope: ip=203.0.113.7 helo=mail.example.org from=alice@example.org to=bob@rcpt.example\r\n"
     "From: Alice Martin <alice@example.org>\r\nTo: bob@rcpt.example\r\nSubject: site photos\r\nMIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nPhotos attached.\r\n"
     "--b1\r\nContent-Type: image/jpeg; name=\"a.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + blob + "--b1--\r\n")
open(sys.argv[1], "w", newline="").write(m)
PY
  start_impostor -c "$CONF" --socket "unix:$IMPOSTOR_SOCK" >/dev/null || die "impostor did not start"
  pid=$(cat "$RUN/impostor.pid")
  say "impostor idle after start: VmRSS $(awk '/VmRSS/ {print $2 " " $3}' /proc/$pid/status)"
  MIX=$RUN/big run_one "unix c=200 1 MB messages n=1000" --socket "unix:$IMPOSTOR_SOCK" -c 200 -n 1000 --per-conn 1000 --timeout-ms 120000
  stop_impostor
fi
say "results (JSON lines): $RESULTS"
