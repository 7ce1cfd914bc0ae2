#!/usr/bin/env bash
# scripts/bench-postfix.sh: what impostor costs a real MTA. smtp-source -> Postfix -> smtp-sink (no dumping),
# three modes interleaved in one invocation so the machine's drift cancels out:
#   A  Postfix alone                      (smtpd_milters empty)
#   B  Postfix + impostor, unix socket    (unix:$RUN/impostor.sock)
#   C  Postfix + impostor, inet TCP       (inet:127.0.0.1:$IMPOSTOR_PORT)
#   with NULL=1 also, after C:
#   D  Postfix + null-milter, unix        (tools/milter-bench/src/bin/null-milter.rs: the same negotiation
#   E  Postfix + null-milter, inet         as impostor, no work — the floor any milter costs Postfix)
# ROUNDS times A B C (D E). Prints each run's inject rate (smtp-source wall time: SMTP acceptance including the
# milter round trips) and drain rate (until Postfix's queue is empty), and per mode the median and the
# ratio to Postfix alone (target >= 0.90).
#
# The load: S sessions in parallel, M messages in all, one message per SMTP session (as smtp-source does
# without -d, so one milter connection per message, as in ../shared/recipes/bench.sh).
#   MIX=mix (default): the 20 KB mix of scripts/bench-milter.sh sent with smtp-source -F, split over
#     4 smtp-source processes in proportion: 70 % clean, 15 % tag, 10 % quarantine, 5 % reject.
#   MIX=plain: one smtp-source -s S -m M -l 20480 (smtp-source's own filler message).
#   CORPUS=DIR: real mail. scripts/corpus-mix.py draws N=12 .eml files of 2-60 KB from DIR (several
#     directories: CORPUS="A B"), at least HTML_PCT=40 % of them HTML, and prints the mix's make-up; one
#     smtp-source per file, the S sessions and M messages shared out evenly, each with its own envelope
#     sender (Return-Path or From of the file). Example: CORPUS=../shared/corpus scripts/bench-postfix.sh
# Environment: ROUNDS=3 S=20 M=2000 MIX=mix BUILD=1 QUIET_WAIT=120 (seconds to wait for an idle box)
#   NULL=1: add modes D and E (builds null-milter with BUILD=1; its CPU is reported like impostor's)
#   WORKERS=N: impostor's milter.worker_threads (default 0 = half the CPUs)
#   PERF_OUT=file: perf record (dwarf call graphs) of impostor during round 1 of the unix mode
#   private ports: PF_PORT=2625 SINK_PORT=2626 IMPOSTOR_PORT=7457 DNS_PORT=5453 METRICS_PORT=9457
# Needs root (private Postfix instance via tests/e2e/lib.sh; /etc/postfix is not touched).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}; S=${S:-20}; M=${M:-2000}; MIX_MODE=${MIX:-mix}
export PF_PORT=${PF_PORT:-2625} SINK_PORT=${SINK_PORT:-2626} IMPOSTOR_PORT=${IMPOSTOR_PORT:-7457} DNS_PORT=${DNS_PORT:-5453}
export METRICS_PORT=${METRICS_PORT:-9457}
cd "$ROOT"
if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release --bin impostor 2>&1 | tail -1 || exit 2
  if [ "${NULL:-0}" = 1 ]; then cargo build --release -p milter-bench --bin null-milter 2>&1 | tail -1 || exit 2; fi
fi
export IMPOSTOR=${IMPOSTOR:-${CARGO_TARGET_DIR:-$ROOT/target}/release/impostor}
NULL_MILTER=${CARGO_TARGET_DIR:-$ROOT/target}/release/null-milter
if [ "${NULL:-0}" = 1 ] && [ ! -x "$NULL_MILTER" ]; then echo "bench-postfix: NULL=1 needs $NULL_MILTER (cargo build --release -p milter-bench)" >&2; exit 2; fi
# shellcheck source=scripts/bench-milter.sh
. "$ROOT/scripts/bench-milter.sh" --lib          # make_mix, MIX_DNS
# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
install_deps || exit 2
e2e_init >/dev/null
trap 'rc=$?; stop_pidfile "$RUN/impostor-unix.pid"; stop_pidfile "$RUN/null-unix.pid"; stop_pidfile "$RUN/null-inet.pid"; (exit $rc); e2e_cleanup' EXIT

start_bench_stack
NULL_SOCK=$(dirname "$IMPOSTOR_SOCK")/null-milter.sock NULL_PORT=$((IMPOSTOR_PORT + 2))
if [ "${NULL:-0}" = 1 ]; then
  "$NULL_MILTER" "unix:$NULL_SOCK" 2>>"$RUN/null-milter.log" & echo $! >"$RUN/null-unix.pid"
  "$NULL_MILTER" "inet:127.0.0.1:$NULL_PORT" 2>>"$RUN/null-milter.log" & echo $! >"$RUN/null-inet.pid"
  wait_socket "unix:$NULL_SOCK" "$(cat "$RUN/null-unix.pid")" || die "null-milter (unix) did not start: $(cat "$RUN/null-milter.log")"
  wait_socket "inet:127.0.0.1:$NULL_PORT" "$(cat "$RUN/null-inet.pid")" || die "null-milter (inet) did not start: $(cat "$RUN/null-milter.log")"
fi
say "Postfix 127.0.0.1:$PF_PORT -> smtp-sink :$SINK_PORT; impostor pids unix $(cat "$RUN/impostor-unix.pid") inet $(cat "$RUN/impostor.pid"); load: $S sessions, $M msgs, $(if [ -n "${CORPUS:-}" ]; then echo "CORPUS=$CORPUS"; else echo "MIX=$MIX_MODE"; fi)"

qcount() { find "$PF_QUEUE"/{incoming,active,deferred,maildrop} -type f 2>/dev/null | wc -l; }
stat_cpu() { awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
busy1s() { local i0 a0 i1 a1; read -r i0 a0 < <(stat_cpu); sleep 1; read -r i1 a1 < <(stat_cpu); echo $((100 - 100 * (i1 - i0) / (a1 - a0))); }
waitquiet() { local b=100 i; for ((i = 0; i < ${QUIET_WAIT:-120}; i++)); do b=$(busy1s); [ "$b" -le 10 ] && break; done; echo "$b"; }
foreign() { pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld|gcc|clang|cargo-afl' 2>/dev/null || true; }
milter_pids() { cat "$RUN/impostor-unix.pid" "$RUN/impostor.pid"; [ "${NULL:-0}" = 1 ] && cat "$RUN/null-unix.pid" "$RUN/null-inet.pid"; true; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }

# send_file FILE SESSIONS MESSAGES: one smtp-source in the background sending FILE (envelope sender in FILE's .from)
send_file() {
  smtp-source -A -s "$2" -m "$3" -F "$1" -f "$(cat "${1%.eml}.from")" -t bob@rcpt.example \
    -M client.example.test "127.0.0.1:$PF_PORT" 2>>"$RUN/source.err" &
  pids+=($!)
}

# load: the smtp-source processes; waits for all of them
load() {
  if [ "$MIX_MODE" = plain ]; then
    smtp-source -A -s "$S" -m "$M" -l 20480 -f bench@sender.example -t bob@rcpt.example -S "bench" "127.0.0.1:$PF_PORT" 2>>"$RUN/source.err"
    return
  fi
  local kind pct s m pids=()
  if [ -n "${CORPUS:-}" ]; then
    local files=("$RUN"/mix/smtp/*.eml) k i
    k=${#files[@]}
    for ((i = 0; i < k; i++)); do
      s=$(( S / k + (i < S % k ? 1 : 0) )); [ "$s" -lt 1 ] && s=1
      send_file "${files[$i]}" "$s" $(( M / k + (i < M % k ? 1 : 0) ))
    done
  else
    for kind in clean:70 tag:15 quarantine:10 reject:5; do
      pct=${kind#*:}; kind=${kind%:*}
      s=$(( (S * pct + 50) / 100 )); [ "$s" -lt 1 ] && s=1
      m=$(( M * pct / 100 ))
      send_file "$RUN/mix/smtp/$kind.eml" "$s" "$m"
    done
  fi
  wait "${pids[@]}"
}

RES=$RUN/runs.txt; : >"$RES"
run_mode() {  # run_mode LABEL MILTERS
  local label=$1 spec=$2 bg t0 t1 t2 i0 a0 i1 a1 f0 f1 off c0 c1 sent rej
  set_milters "$spec" >/dev/null
  postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1
  bg=$(waitquiet); f0=$(foreign)
  off=$(stat -c %s "$PF_LOG")
  c0=$(ticks $(milter_pids))
  local perf_pid=
  if [ -n "${PERF_OUT:-}" ] && [ "$label" = impostor-unix ] && [ "$round" = 1 ]; then
    perf record -F 999 --call-graph dwarf,16384 -p "$(cat "$RUN/impostor-unix.pid")" -o "$PERF_OUT" >/dev/null 2>&1 &
    perf_pid=$!; sleep 0.5
  fi
  read -r i0 a0 < <(stat_cpu); t0=$(date +%s.%N)
  load
  t1=$(date +%s.%N)
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid"; fi
  while [ "$(qcount)" -gt 0 ]; do sleep 0.05; done
  t2=$(date +%s.%N); read -r i1 a1 < <(stat_cpu); f1=$(foreign)
  c1=$(ticks $(milter_pids))
  sleep 0.5
  sent=$(tail -c +$((off + 1)) "$PF_LOG" | grep -c 'status=sent')
  rej=$(tail -c +$((off + 1)) "$PF_LOG" | grep -c 'milter-reject')
  local held; held=$(tail -c +$((off + 1)) "$PF_LOG" | grep -c 'milter-hold')
  postsuper -c "$PF_CONF" -d ALL hold >/dev/null 2>&1
  awk -v l="$label" -v r="$round" -v m="$M" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v sent="$sent" -v rej="$rej" -v held="$held" \
      -v busy=$((100 - 100 * (i1 - i0) / (a1 - a0))) -v bg="$bg" -v f=$((f0 + f1)) -v cpu=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "round %d %-14s inject %6.2f s %5.0f msg/s  drained %6.2f s %5.0f msg/s  sent %d held %d rejected %d  milter-cpu %.3f ms/msg  host-busy %d%% (before %d%%)%s\n",
      r, l, t1 - t0, m / (t1 - t0), t2 - t0, m / (t2 - t0), sent, held, rej, cpu / hz * 1000 / m, busy, bg, (f > 0 ? "  CONTAMINATED(compiler running)" : "") }' | tee -a "$RES"
}
for ((round = 1; round <= ROUNDS; round++)); do
  run_mode postfix-alone ""
  run_mode impostor-unix "unix:$IMPOSTOR_SOCK"
  run_mode impostor-inet "inet:127.0.0.1:$IMPOSTOR_PORT"
  if [ "${NULL:-0}" = 1 ]; then
    run_mode null-unix "unix:$NULL_SOCK"
    run_mode null-inet "inet:127.0.0.1:$NULL_PORT"
  fi
done
echo "# summary over $ROUNDS rounds (median; ratio = mode / postfix-alone)"
for kind in inject drained; do
  awk -v k="$kind" '{ for (i = 1; i <= NF; i++) if ($i == k) { v[$3] = v[$3] " " $(i + 3) } }
    function med(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    END { base = med(v["postfix-alone"]); printf "%-8s postfix-alone %5.0f msg/s", k, base
      printf "  | impostor-unix %5.0f msg/s (%.2fx)", med(v["impostor-unix"]), med(v["impostor-unix"]) / base
      printf "  | impostor-inet %5.0f msg/s (%.2fx)", med(v["impostor-inet"]), med(v["impostor-inet"]) / base
      if ("null-unix" in v) printf "  | null-unix %5.0f msg/s (%.2fx)  | null-inet %5.0f msg/s (%.2fx)", med(v["null-unix"]), med(v["null-unix"]) / base, med(v["null-inet"]), med(v["null-inet"]) / base
      printf "\n" }' "$RES"
done
grep -c . "$RUN/source.err" >/dev/null 2>&1 && [ -s "$RUN/source.err" ] && { echo "# smtp-source stderr (first lines):"; sort "$RUN/source.err" | uniq -c | sort -rn | head -5; }
for p in impostor-unix impostor; do echo "# $p VmHWM $(awk '/VmHWM/ {print $2 " " $3}' "/proc/$(cat "$RUN/$p.pid")/status")"; done
