#!/usr/bin/env bash
# tests/e2e/postfix.sh: impostor behind a real Postfix, end to end, on loopback.
#
#   swaks (as remote client 203.0.113.7 via XCLIENT) -> Postfix 127.0.0.1:$PF_PORT
#        -> impostor (inet:127.0.0.1:$IMPOSTOR_PORT, then unix:$IMPOSTOR_SOCK) -> smtp-sink 127.0.0.1:$SINK_PORT
#
# For each of msgs/{clean,tag,quarantine,reject}.eml it checks what the client was told, what reached
# smtp-sink (headers X-Impostor-Verdict/-Score/-Rules, Subject tag, forged headers removed) and what
# sits in Postfix's hold queue. Then monitor mode (--dry-run), and impostor down (tempfail, 451 4.7.1).
#
# Builds nothing: uses $IMPOSTOR or target/debug/impostor. Needs root (it runs a private Postfix
# instance under a mktemp directory; /etc/postfix is not touched). Prints "ok - ..." / "not ok - ..."
# per check and ends with "N passed, M failed"; exits 1 if any check failed, 2 if it could not run.
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
MSGS=$E2E_DIR/msgs
T0=$(date +%s)

install_deps || exit 2
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (run cargo build, or set IMPOSTOR=...)"
e2e_init
"$IMPOSTOR" serve --help >/dev/null 2>&1 || die "$IMPOSTOR serve --help failed"

# score_in LOW HIGH VALUE: LOW <= VALUE < HIGH (numbers like 6, 6.0, +6.0)
score_in() { awk -v lo="$1" -v hi="$2" -v v="$3" 'BEGIN { if (v !~ /^[-+]?[0-9]+(\.[0-9]+)?$/) exit 1; exit !(v + 0 >= lo && v + 0 < hi) }'; }
# rule_score RULES_VALUE RULE: the score given to RULE in "RULE=score, ..." (empty if absent)
rule_score() { grep -oE "(^|[ ,])$2=[-+]?[0-9.]+" <<<"$1" | head -1 | sed 's/.*=//'; }
num_eq() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 == b + 0) }'; }
band() { # band ACTION -> "LOW HIGH" of the score band for that action (default thresholds 5/10/15)
  case $1 in accept) echo "-1000 5" ;; tag) echo "5 10" ;; quarantine) echo "10 15" ;; *) echo "15 1000" ;; esac
}

# check_headers ID FILE VERDICT ACTION [RULE=SCORE ...]: the X-Impostor-* headers of a message copy
check_headers() {
  local id=$1 f=$2 verdict=$3 action=$4; shift 4
  local v s r n lo hi rs want rule
  v=$(header_values "$f" X-Impostor-Verdict); s=$(header_values "$f" X-Impostor-Score); r=$(header_values "$f" X-Impostor-Rules)
  n=$(grep -c '' <<<"$v"); [ -z "$v" ] && n=0
  check "$id: exactly one X-Impostor-Verdict header (incoming ones removed)" "found $n: $(tr '\n' '|' <<<"$v")" [ "$n" -eq 1 ]
  check "$id: X-Impostor-Verdict: $verdict" "got: $(tr '\n' '|' <<<"$v")" [ "$v" = "$verdict" ]
  read -r lo hi < <(band "$action")
  n=$(grep -c '' <<<"$s"); [ -z "$s" ] && n=0
  check "$id: one X-Impostor-Score in the $action band [$lo, $hi) (score $s)" "got $n header(s): $(tr '\n' '|' <<<"$s")" \
    eval '[ "$n" -eq 1 ] && score_in "$lo" "$hi" "$s"'
  n=$(grep -c '' <<<"$r"); [ -z "$r" ] && n=0
  if [ $# -eq 0 ]; then
    check "$id: one X-Impostor-Rules naming no rule ('$r')" "got $n header(s): $(tr '\n' '|' <<<"$r")" \
      eval '[ "$n" -eq 1 ] && ! grep -qE "[A-Z][A-Z0-9_]+=" <<<"$r"'
  else
    check "$id: one X-Impostor-Rules header" "got $n: $(tr '\n' '|' <<<"$r")" [ "$n" -eq 1 ]
    for want in "$@"; do
      rule=${want%%=*}; rs=$(rule_score "$r" "$rule")
      check "$id: X-Impostor-Rules has $want" "X-Impostor-Rules: $r" num_eq "$rs" "${want#*=}"
    done
  fi
}

# expect_delivered ID EML VERDICT ACTION SUBJECT [RULE=SCORE ...]
expect_delivered() {
  local id=$1 eml=$2 verdict=$3 action=$4 subject=$5 f got; shift 5
  send_eml "$id" "$MSGS/$eml"
  if [ "$SWAKS_RC" -ne 0 ] || [ -z "$QID" ]; then
    fail "$id: Postfix accepts $eml (250 queued as ...)" "swaks rc=$SWAKS_RC" "$(swaks_reply)"; return
  fi
  pass "$id: Postfix accepts $eml (queued as $QID)"
  if ! wait_sink "$id" 20; then
    fail "$id: delivered to smtp-sink" "$(grep -F "$QID" "$PF_LOG" | tail -5)" "$(queue_json)"; return
  fi
  f=$(sink_file "$id")
  pass "$id: delivered to smtp-sink ($(basename "$f"))"
  check_headers "$id" "$f" "$verdict" "$action" "$@"
  got=$(header_values "$f" Subject)
  check "$id: Subject: $subject" "got Subject: $got" [ "$got" = "$subject" ]
  check "$id: impostor logged one line for queue id $QID" "$(grep -F "$QID" "$RUN/impostor.log" || tail -3 "$RUN/impostor.log")" \
    [ "$(grep -cF "$QID" "$RUN/impostor.log")" -eq 1 ]
}

# expect_held ID EML [RULE=SCORE ...]: accepted with 250, then in the hold queue, not delivered
expect_held() {
  local id=$1 eml=$2 i tmp; shift 2
  send_eml "$id" "$MSGS/$eml"
  if [ "$SWAKS_RC" -ne 0 ] || [ -z "$QID" ]; then
    fail "$id: Postfix accepts $eml (250 queued as ...)" "swaks rc=$SWAKS_RC" "$(swaks_reply)"; return
  fi
  pass "$id: Postfix accepts $eml (queued as $QID)"
  HELD_QID=$QID
  for ((i = 0; i < 100; i++)); do in_queue "$QID" hold && break; sleep 0.1; done
  check "$id: $QID is in the hold queue (postqueue -j)" "postqueue -j: $(queue_json)" in_queue "$QID" hold
  check "$id: Postfix logged milter-hold for $QID" "$(grep -F "$QID" "$PF_LOG" | tail -5)" \
    grep -qE "$QID: milter-hold: END-OF-MESSAGE" "$PF_LOG"
  tmp=$RUN/held-$id.txt
  postcat -c "$PF_CONF" -hq "$QID" >"$tmp" 2>&1
  check_headers "$id (held copy)" "$tmp" quarantine quarantine "$@"
  wait_queue 10; sleep 0.5
  check "$id: not delivered to smtp-sink" "$(grep -l "X-E2E-Case: $id" "$SINK_DIR"/* 2>/dev/null)" [ "$(sink_count "$id")" -eq 0 ]
}

# expect_refused ID EML CODE: the client gets CODE (e.g. "550 5.7.1"); nothing queued, nothing delivered
expect_refused() {
  local id=$1 eml=$2 code=$3
  send_eml "$id" "$MSGS/$eml"
  check "$id: client gets $code" "swaks rc=$SWAKS_RC; $(swaks_reply)" grep -qE "^<\*\* +${code//./\\.}( |$)" "$SWAKS_OUT"
  check "$id: no queue id given to the client" "queued as $QID" [ -z "$QID" ]
  wait_queue 10; sleep 0.5
  check "$id: not delivered to smtp-sink" "$(grep -l "X-E2E-Case: $id" "$SINK_DIR"/* 2>/dev/null)" [ "$(sink_count "$id")" -eq 0 ]
  check "$id: nothing left in Postfix's queue but held mail" "$(queue_json)" eval '! queue_busy'
}

# the four messages, with impostor enforcing
four_cases() {
  local p=$1
  expect_delivered "$p-clean" clean.eml accept accept "Lunch on Friday"
  expect_delivered "$p-tag" tag.eml tag tag "[Suspected impersonation] Your invoice" BRAND_NAME_FOREIGN_DOMAIN=6
  expect_held "$p-quarantine" quarantine.eml BRAND_NAME_FOREIGN_DOMAIN=6 IMPERSONATION=6
  expect_refused "$p-reject" reject.eml "550 5.7.1"
}

# latency_probe NAME: one SMTP session, E2E_LATENCY_MSGS messages through Postfix and impostor
# (smtp-source). A milter that leaves Nagle + delayed ACK in play costs ~40 ms per message on
# loopback TCP (../shared/recipes/NOTES.md section 6.3); Postfix alone needs ~2 ms here.
# Prints the figure as a regression signal; speed targets live in scripts/latency.sh, not here.
# Asserts only that every message went through.
latency_probe() {
  local n=${E2E_LATENCY_MSGS:-50} t0 t1 ms err
  t0=$(date +%s%N)
  smtp-source -s 1 -m "$n" -l 2000 -f latency@example.org -t "$SWAKS_TO" -S "latency probe $1" \
    "127.0.0.1:$PF_PORT" 2>"$RUN/smtp-source-$1.err"
  t1=$(date +%s%N)
  ms=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / 1e6 / n }')
  err=$(head -3 "$RUN/smtp-source-$1.err")
  echo "# latency $1: one SMTP session of $n messages, $ms ms per message (Postfix alone: ~2 ms here)"
  check "$1: one SMTP session of $n messages without client errors" "${err:-no smtp-source errors}" [ -z "$err" ]
  wait_queue 30
}

# quarantine_review PHASE release|delete: `impostor quarantine` lists the message held in PHASE
# with its verdict, then releases it (it must reach smtp-sink, verdict headers intact) or deletes it.
quarantine_review() {
  local p=$1 what=$2 list out
  list=$("$IMPOSTOR" quarantine --postfix-config "$PF_CONF" list --json 2>&1)
  check "$p: impostor quarantine list shows $HELD_QID as quarantine" "$list" \
    eval "printf '%s\n' \"\$list\" | grep -F '\"queue_id\":\"$HELD_QID\"' | grep -qF '\"verdict\":\"quarantine\"'"
  if [ "$what" = release ]; then
    out=$("$IMPOSTOR" quarantine --postfix-config "$PF_CONF" release "$HELD_QID" 2>&1)
    check "$p: impostor quarantine release $HELD_QID" "$out" \
      eval '! in_queue "$HELD_QID" hold'
    # the release is logged (where [log] of the default config says: stderr here), with the queue id
    check "$p: the release is logged with its queue id" "$out" \
      eval "printf '%s\n' \"\$out\" | grep 'quarantine release' | grep -qF '$HELD_QID'"
    if wait_sink "$p-quarantine" 20; then
      pass "$p: released message delivered to smtp-sink"
      check_headers "$p-released" "$(sink_file "$p-quarantine")" quarantine quarantine BRAND_NAME_FOREIGN_DOMAIN=6 IMPERSONATION=6
    else
      fail "$p: released message delivered to smtp-sink" "$(grep -F "$HELD_QID" "$PF_LOG" | tail -5)"
    fi
  else
    check "$p: impostor quarantine delete $HELD_QID" "$("$IMPOSTOR" quarantine --postfix-config "$PF_CONF" delete "$HELD_QID" 2>&1)" \
      eval '! in_queue "$HELD_QID" hold'
  fi
  check "$p: release/delete of an unknown id fails cleanly" "exit $?" \
    eval '! "$IMPOSTOR" quarantine --postfix-config "$PF_CONF" delete NOSUCHID >/dev/null 2>&1'
}

# stop_impostor_checked PHASE: SIGTERM, and impostor must exit 0
stop_impostor_checked() {
  stop_impostor
  check "$1: impostor exits 0 on SIGTERM" "exit status $STOPPED_RC; $(tail -3 "$RUN/impostor.log")" [ "${STOPPED_RC:-x}" = 0 ]
}

# ---------------------------------------------------------------------------------------------
say "impostor binary: $IMPOSTOR"
start_sink || die "smtp-sink did not start"

CONF=$RUN/impostor.toml
write_conf "$CONF"
start_dns || die "dnsmasq did not start"

say "== pass 1: impostor on inet:127.0.0.1:$IMPOSTOR_PORT"
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not start"
MILTERS="inet:127.0.0.1:$IMPOSTOR_PORT" start_postfix || die "Postfix did not start"
four_cases inet
quarantine_review inet delete
latency_probe inet-latency

say "== monitor mode: impostor serve --dry-run"
stop_impostor_checked inet
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" --dry-run || die "impostor --dry-run did not start"
expect_delivered monitor-reject reject.eml "accept (monitor: would reject)" reject "OpenAI API key revoked" \
  BRAND_NAME_FOREIGN_DOMAIN=6 LOOKALIKE_FROM_DOMAIN=5
expect_delivered monitor-quarantine quarantine.eml "accept (monitor: would quarantine)" quarantine \
  "OpenAI: unusual sign-in to your account" BRAND_NAME_FOREIGN_DOMAIN=6 IMPERSONATION=6

say "== impostor down: milter_default_action = tempfail"
stop_impostor_checked monitor
expect_refused down-clean clean.eml "451 4.7.1"

say "== pass 2: impostor on unix:$IMPOSTOR_SOCK (Postfix runs without chroot)"
# The daemon creates the socket with milter.socket_mode (default 0660) and milter.socket_group:
# give it to the postfix group, as a packager would.
write_conf "$RUN/impostor-unix.toml" '[milter]' "socket = \"unix:$IMPOSTOR_SOCK\"" 'socket_mode = "0660"' \
  'socket_group = "postfix"'
start_impostor -c "$RUN/impostor-unix.toml" --socket "unix:$IMPOSTOR_SOCK" || die "impostor did not start on $IMPOSTOR_SOCK"
check "unix socket $IMPOSTOR_SOCK is writable by user postfix ($(stat -c '%A %U:%G' "$IMPOSTOR_SOCK"))" \
  "$(stat -c '%A %U:%G %n' "$IMPOSTOR_SOCK")" runuser -u postfix -- test -w "$IMPOSTOR_SOCK"
set_milters "unix:$IMPOSTOR_SOCK"
# the message refused with 451 while impostor was down, sent again: nothing was lost
expect_delivered down-clean clean.eml accept accept "Lunch on Friday"
check "down-clean: delivered exactly once" "$(sink_count down-clean) copies" [ "$(sink_count down-clean)" -eq 1 ]
four_cases unix
quarantine_review unix release
latency_probe unix-latency

stop_impostor_checked unix
check "impostor removed its unix socket on exit" "$(ls -l "$IMPOSTOR_SOCK" 2>&1)" [ ! -e "$IMPOSTOR_SOCK" ]
postsuper -c "$PF_CONF" -d ALL hold >/dev/null 2>&1
check "hold queue emptied (postsuper -d ALL hold)" "$(queue_json)" eval '! queue_json | grep -q .'
# expected: one "connect to Milter service ... Connection refused" while impostor was down; nothing else
milter_warnings() { grep -iE '(warning|error|fatal|panic):.*milter' "$PF_LOG" | grep -v 'connect to Milter service'; }
check "Postfix logged no other milter warnings" "$(milter_warnings | tail -5)" eval '! milter_warnings | grep -q .'
check "impostor logged no panic" "$(grep -iE 'panick?ed' "$RUN/impostor.log" | head -3)" eval '! grep -qiE "panick?ed" "$RUN/impostor.log"'

say "e2e took $(($(date +%s) - T0)) s"
summary
