#!/usr/bin/env bash
# tests/e2e/bench-smoke.sh: milter-bench against a freshly started impostor, small size, as a CI smoke test.
#
# For the unix socket and for inet 127.0.0.1: 4 connections x 200 messages (tests/e2e/msgs: clean, tag,
# quarantine, reject), 20 messages per milter connection. Checks only that every message got a final
# end-of-message reply and that there were no protocol errors; prints msgs/s and p99 (no timing assertion:
# CI machines vary). Uses $IMPOSTOR (default target/debug/impostor) and the milter-bench binary beside it
# (the workspace member tools/milter-bench: cargo build -p milter-bench; tests/run.sh builds the workspace).
# Then null-milter (scripts/bench-postfix.sh NULL=1's floor, beside milter-bench) answers 200 messages.
# Needs no Postfix and no root (dnsmasq is optional: without it impostor gets no DNS answers and still replies).
# Environment: CONNS=4 PER_CONN_MSGS=200; private ports IMPOSTOR_PORT=7557 DNS_PORT=5553 METRICS_PORT=9557
set -uo pipefail
export IMPOSTOR_PORT=${IMPOSTOR_PORT:-7557} DNS_PORT=${DNS_PORT:-5553} METRICS_PORT=${METRICS_PORT:-9557}
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
CONNS=${CONNS:-4}; PER=${PER_CONN_MSGS:-200}
BENCH=${MILTER_BENCH:-$(dirname "$IMPOSTOR")/milter-bench}
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (cargo build, or set IMPOSTOR=...)"
[ -x "$BENCH" ] || die "no milter-bench binary at $BENCH (cargo build -p milter-bench or --workspace; or set MILTER_BENCH=...)"
# e2e_init wants root only for Postfix; this test runs no Postfix
if [ -n "${E2E_RUN:-}" ]; then RUN=$E2E_RUN; mkdir -p "$RUN"; else RUN=$(mktemp -d /tmp/impostor-bench-smoke.XXXXXX); fi
IMPOSTOR_SOCK=$RUN/impostor.sock
cleanup() {
  local rc=$?
  stop_impostor; stop_pidfile "$RUN/null.pid"; stop_pidfile "$RUN/dns.pid"
  if [ "$rc" -eq 0 ] && [ -z "${E2E_KEEP:-}" ] && [ -z "${E2E_RUN:-}" ]; then rm -rf "$RUN"; else say "logs kept in $RUN"; fi
  exit "$rc"
}
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

if [ -x /usr/sbin/dnsmasq ] && [ "$(id -u)" -eq 0 ]; then start_dns >/dev/null || die "dnsmasq did not start"; fi
write_conf "$RUN/impostor.toml"

# field JSON KEY: a top-level number from milter-bench --json
field() { sed -n "s/^  \"$2\": \\([0-9.]*\\),\$/\\1/p" "$1"; }
smoke() {
  local sock=$1 out=$RUN/bench-${1%%:*}.json total=$((CONNS * PER))
  start_impostor -c "$RUN/impostor.toml" --socket "$sock" >/dev/null || { fail "impostor starts on $sock" "$(tail -5 "$RUN/impostor.log")"; return; }
  "$BENCH" --json --socket "$sock" -c "$CONNS" -n "$total" --per-conn 20 "$E2E_DIR/msgs" >"$out" 2>"$RUN/bench.err"
  local rc=$? finals errors
  finals=$(field "$out" messages_with_final_reply); errors=$(field "$out" errors)
  check "$sock: $total of $total messages got a final end-of-message reply (got ${finals:-none})" \
    "milter-bench rc=$rc: $(cat "$RUN/bench.err" "$out" | head -40)" [ "${finals:-0}" = "$total" ]
  check "$sock: no protocol errors (${errors:-?})" "$(grep -A5 error_kinds "$out")" [ "${errors:-1}" = 0 ]
  say "$sock: $(field "$out" msgs_per_sec) msgs/s, eom p99 $(sed -n '/"eom_ms"/,/}/s/.*"p99": \([0-9.]*\).*/\1/p' "$out") ms;" \
    "replies: $(sed -n '/"final_replies"/,/}/p' "$out" | grep -o '"[a-z_0-9]*": [0-9][0-9]*' | tr -d '"' | tr '\n' ' ')"
  stop_impostor
}
smoke "unix:$IMPOSTOR_SOCK"
smoke "inet:127.0.0.1:$IMPOSTOR_PORT"

# null-milter (the floor of scripts/bench-postfix.sh NULL=1): it negotiates what impostor negotiates and
# answers continue to every message; milter-bench must see that over the same protocol
NULL_MILTER=${NULL_MILTER:-$(dirname "$BENCH")/null-milter}
if [ -x "$NULL_MILTER" ]; then
  "$NULL_MILTER" "unix:$RUN/null.sock" 2>"$RUN/null-milter.log" & echo $! >"$RUN/null.pid"
  wait_socket "unix:$RUN/null.sock" "$(cat "$RUN/null.pid")" || fail "null-milter listens on unix:$RUN/null.sock" "$(cat "$RUN/null-milter.log")"
  out=$RUN/bench-null.json total=$((CONNS * 50))
  "$BENCH" --json --socket "unix:$RUN/null.sock" -c "$CONNS" -n "$total" --per-conn 10 "$E2E_DIR/msgs" >"$out" 2>"$RUN/bench.err"
  cont=$(sed -n '/"final_replies"/,/}/s/.*"continue": \([0-9]*\).*/\1/p' "$out")
  check "null-milter: $total of $total messages answered continue (got ${cont:-none})" \
    "$(cat "$RUN/bench.err" "$RUN/null-milter.log" "$out" | head -40)" [ "${cont:-0}" = "$total" ]
  check "null-milter: no protocol errors" "$(grep -A5 error_kinds "$out")" [ "$(field "$out" errors)" = 0 ]
  stop_pidfile "$RUN/null.pid"
  check "null-milter stopped on SIGTERM (rc ${STOPPED_RC:-?})" "$(cat "$RUN/null-milter.log")" [ "${STOPPED_RC:-1}" = 0 ]
else
  fail "null-milter binary at $NULL_MILTER" "cargo build -p milter-bench (tests/run.sh builds the workspace)"
fi
summary
