#!/usr/bin/env bash
# tests/e2e/sendmail.sh: impostor behind a real Sendmail 8.17, end to end, on loopback.
#
#   swaks -> Sendmail 127.0.0.1:$SM_PORT -> impostor (inet:127.0.0.1:$IMPOSTOR_PORT)
#         -> smtp-sink 127.0.0.1:$SINK_PORT
#
# Sendmail is not installed: Debian's sendmail-bin/-base/-cf conflict with postfix
# (Conflicts: mail-transport-agent), so they are fetched with `apt-get download` and unpacked with
# `dpkg -x` into $SM_CACHE (default /var/cache/impostor-e2e/sendmail), once. The sendmail.cf is built
# with m4 from a test .mc plus deploy/sendmail.mc.snippet (the shipped lines, port changed), so the
# snippet itself is tested. Sendmail runs with its own queue, pid file and aliases under the run
# directory, in a private UTS namespace with a dotted hostname (otherwise it sleeps 60 s on every
# start: "My unqualified host name (vm) unknown"; see ../shared/recipes/NOTES.md section 7).
# Its log goes to syslog: when /dev/log is missing, a busybox syslogd writes $RUN/syslog.log.
#
# Checks, for msgs/{clean,tag,quarantine,reject}.eml: what the client was told; what reached
# smtp-sink (X-Impostor-* headers, Subject tag); the quarantined message in Sendmail's quarantine
# (hf file with a "q" line carrying impostor's reason, `mailq -qQ`), not delivered, then released
# and delivered; reject -> 550 5.7.1 at the client; impostor stopped -> 451 4.3.2 (F=T), and the
# same message accepted once impostor is back; then tag and reject over a unix socket (S=local:).
#
# Environment: as lib.sh (SINK_PORT, IMPOSTOR_PORT, DNS_PORT, METRICS_PORT, IMPOSTOR, E2E_KEEP...)
# plus SM_PORT (default 2527) and SM_CACHE. Needs root. Prints "ok - ..." / "not ok - ..." per
# check and ends with "N passed, M failed"; exits 1 if a check failed, 2 if it could not run.
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
MSGS=$E2E_DIR/msgs
SM_PORT=${SM_PORT:-2527}
SM_CACHE=${SM_CACHE:-/var/cache/impostor-e2e/sendmail}
SM_ROOT=$SM_CACHE/root
SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail
SM_HOSTNAME=sm.example.test
SNIPPET=$REPO/deploy/sendmail.mc.snippet
T0=$(date +%s)

# install_sendmail: download and unpack Debian's sendmail packages into $SM_ROOT (once)
install_sendmail() {
  if [ ! -x "$SM_BIN" ] || [ ! -f "$SM_ROOT/usr/share/sendmail/cf/m4/cf.m4" ]; then
    local debs=$SM_CACHE/debs tmp d
    say "downloading sendmail-bin sendmail-base sendmail-cf to $debs (unpacked, not installed)"
    rm -rf "$debs"; mkdir -p "$debs"
    id _apt >/dev/null 2>&1 && chown _apt "$debs"     # apt-get download drops privileges to _apt
    if ! (cd "$debs" && apt-get download -q sendmail-bin sendmail-base sendmail-cf </dev/null); then
      apt-get update -q && (cd "$debs" && apt-get download -q sendmail-bin sendmail-base sendmail-cf </dev/null) || return 1
    fi
    tmp=$(mktemp -d "$SM_CACHE/root.XXXXXX")
    for d in "$debs"/*.deb; do dpkg -x "$d" "$tmp" || return 1; done
    rm -rf "$SM_ROOT"; mv "$tmp" "$SM_ROOT"; chmod 755 "$SM_ROOT"
  fi
  local missing
  missing=$(ldd "$SM_BIN" 2>&1 | grep 'not found')
  [ -z "$missing" ] || { echo "e2e: $SM_BIN: missing libraries (see install_deps in lib.sh): $missing" >&2; return 1; }
  command -v m4 >/dev/null || { echo "e2e: m4 is missing" >&2; return 1; }
}

install_deps || exit 2
install_sendmail || exit 2
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (run cargo build, or set IMPOSTOR=...)"
[ -f "$SNIPPET" ] || die "no $SNIPPET"
e2e_init
SM_DIR=$RUN/sendmail
SM_CF=$SM_DIR/etc/sendmail.cf
# every sendmail invocation: private UTS namespace with a qualified hostname, our .cf
SMX=(unshare --uts sh -c "hostname $SM_HOSTNAME && exec \"\$0\" \"\$@\"" "$SM_BIN" -C "$SM_CF")

# our EXIT trap: Sendmail and syslogd first, then lib.sh's cleanup (impostor, sink, dnsmasq, $RUN)
sm_cleanup() {
  local rc=$?
  stop_sendmail
  [ -n "${SOCK_DIR:-}" ] && rm -rf "$SOCK_DIR"
  if [ -f "$RUN/syslogd.pid" ]; then
    stop_pidfile "$RUN/syslogd.pid"
    rm -f /dev/log                       # we created it (it did not exist before)
  fi
  (exit "$rc"); e2e_cleanup
}
trap sm_cleanup EXIT

# start_syslog: Sendmail logs only through syslog(3). Reuse a running syslog (/dev/log exists:
# then its log is elsewhere) or start busybox syslogd writing $RUN/syslog.log.
SM_LOG=$RUN/syslog.log
start_syslog() {
  if [ -S /dev/log ]; then say "/dev/log exists: Sendmail logs to the running syslog, not $SM_LOG"; return 0; fi
  busybox syslogd -n -O "$SM_LOG" </dev/null >/dev/null 2>&1 &
  echo $! >"$RUN/syslogd.pid"
  local i; for ((i = 0; i < 30; i++)); do [ -S /dev/log ] && break; sleep 0.1; done
  say "busybox syslogd pid $(cat "$RUN/syslogd.pid") -> $SM_LOG"
}
sm_log() { cat "$SM_LOG" 2>/dev/null; }

# write_sendmail_cf [S=SPEC]: the .mc (test settings + deploy/sendmail.mc.snippet) -> sendmail.cf;
# the snippet's socket becomes inet:$IMPOSTOR_PORT@127.0.0.1, or SPEC (e.g. local:/run/x/impostor.sock)
write_sendmail_cf() {
  local spec=${1:-inet:$IMPOSTOR_PORT@127.0.0.1}
  install -d -m 755 -o root -g root "$SM_DIR" "$SM_DIR/etc"
  install -d -m 700 -o root -g root "$SM_DIR/mqueue"
  printf 'hosts\tfiles\naliases\tfiles\n' >"$SM_DIR/etc/service.switch"     # never DNS
  printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' >"$SM_DIR/etc/aliases"
  # placeholders, not shell expansion: m4 quotes are backquotes
  sed -e "s|@SM_DIR@|$SM_DIR|g" -e "s|@SM_ROOT@|$SM_ROOT|g" -e "s|@SM_HOSTNAME@|$SM_HOSTNAME|g" \
      -e "s|@SM_PORT@|$SM_PORT|g" -e "s|@SINK_PORT@|$SINK_PORT|g" >"$SM_DIR/etc/sendmail.mc" <<'EOF'
dnl written by tests/e2e/sendmail.sh: Sendmail on 127.0.0.1:@SM_PORT@, relaying everything to
dnl smtp-sink [127.0.0.1]:@SINK_PORT@; all runtime paths under @SM_DIR@
VERSIONID(`impostor tests/e2e/sendmail.sh')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `@SM_HOSTNAME@')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confSERVICE_SWITCH_FILE', `@SM_DIR@/etc/service.switch')dnl
define(`confHOSTS_FILE', `/etc/hosts')dnl
define(`confHELP_FILE', `@SM_ROOT@/etc/mail/helpfile')dnl
define(`confPID_FILE', `@SM_DIR@/sendmail.pid')dnl
define(`QUEUE_DIR', `@SM_DIR@/mqueue')dnl
define(`STATUS_FILE', `@SM_DIR@/statistics')dnl
define(`ALIAS_FILE', `@SM_DIR@/etc/aliases')dnl
define(`confDEF_USER_ID', `mail:mail')dnl
dnl the run directory is below /tmp (world-writable, sticky): accept it
define(`confDONT_BLAME_SENDMAIL', `MapInUnsafeDirPath,HelpFileInUnsafeDirPath')dnl
define(`confLOG_LEVEL', `9')dnl
define(`confMILTER_LOG_LEVEL', `9')dnl
define(`confTO_IDENT', `0s')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`confMAX_DAEMON_CHILDREN', `100')dnl
define(`confQUEUE_LA', `100')dnl
define(`confREFUSE_LA', `200')dnl
define(`confDELAY_LA', `0')dnl
define(`confCON_EXPENSIVE', `False')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h @SINK_PORT@')dnl
define(`RELAY_MAILER_ARGS', `TCP $h @SINK_PORT@')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`accept_unresolvable_domains')dnl
DAEMON_OPTIONS(`Family=inet, Name=MTA, Port=@SM_PORT@, Addr=127.0.0.1, Listen=256')dnl
EOF
  # the shipped snippet, pointed at this run's impostor port
  sed "s|S=inet:7357@127\.0\.0\.1|S=$spec|" "$SNIPPET" >>"$SM_DIR/etc/sendmail.mc"
  printf "MAILER(\`local')dnl\nMAILER(\`smtp')dnl\n" >>"$SM_DIR/etc/sendmail.mc"
  m4 "$SM_ROOT/usr/share/sendmail/cf/m4/cf.m4" "$SM_DIR/etc/sendmail.mc" >"$SM_CF" 2>"$RUN/m4.err" || { cat "$RUN/m4.err" >&2; return 1; }
  chmod 644 "$SM_CF"
}

start_sendmail() {
  port_free "$SM_PORT" || return 1
  "${SMX[@]}" -bi >"$RUN/newaliases.out" 2>&1 || { cat "$RUN/newaliases.out" >&2; return 1; }
  # -bD: daemon in the foreground (so $! is Sendmail's pid); -q10s: a queue run every 10 s.
  # setsid: its own process group, so the children it forks can be stopped with it.
  setsid "${SMX[@]}" -bD -q10s -L sm-mta </dev/null >>"$RUN/sendmail.out" 2>&1 &
  echo $! >"$RUN/sendmail.pid"
  wait_port "$SM_PORT" 15 || { cat "$RUN/sendmail.out" >&2; return 1; }
  say "Sendmail pid $(cat "$RUN/sendmail.pid") on 127.0.0.1:$SM_PORT (cf $SM_CF), milter $(sed -n 's/^Ximpostor, S=\([^,]*\),.*/\1/p' "$SM_CF")"
}
# stop_sendmail: SIGTERM the daemon we started, then whatever is left of its process group
stop_sendmail() {
  local p
  [ -f "$RUN/sendmail.pid" ] || return 0
  p=$(cat "$RUN/sendmail.pid")
  stop_pidfile "$RUN/sendmail.pid"
  if [ -n "$p" ] && kill -0 -- "-$p" 2>/dev/null; then sleep 1; kill -TERM -- "-$p" 2>/dev/null || true; fi
}

# ---------------------------------------------------------------------------------------------
# sm_send CASE_ID FILE [swaks args...]: send FILE to Sendmail with "X-E2E-Case: CASE_ID" added.
# Sets SWAKS_RC, SWAKS_OUT, QID (from "250 2.0.0 QID Message accepted for delivery").
sm_send() {
  local id=$1 file=$2 from; shift 2
  from=$(sed -n 's/^From:.*<\([^>]*\)>.*/\1/p; /^$/q' "$file" | head -1)
  SWAKS_OUT=$RUN/swaks/$id.txt
  swaks --server "127.0.0.1:$SM_PORT" --timeout 60 --helo client.example.test \
    --from "${from:-sender@example.org}" --to "$SWAKS_TO" \
    --data "@$file" --add-header "X-E2E-Case: $id" "$@" </dev/null >"$SWAKS_OUT" 2>&1
  SWAKS_RC=$?
  QID=$(sed -n 's/^<-  250 [0-9.]* \([0-9A-Za-z]*\) Message accepted.*/\1/p' "$SWAKS_OUT" | tail -1)
}

score_in() { awk -v lo="$1" -v hi="$2" -v v="$3" 'BEGIN { if (v !~ /^[-+]?[0-9]+(\.[0-9]+)?$/) exit 1; exit !(v + 0 >= lo && v + 0 < hi) }'; }
band() { case $1 in accept) echo "-1000 5" ;; tag) echo "5 10" ;; quarantine) echo "10 15" ;; *) echo "15 1000" ;; esac; }
count_lines() { if [ -z "$1" ]; then echo 0; else grep -c '' <<<"$1"; fi; }

# check_headers ID FILE VERDICT ACTION [RULE ...]: one X-Impostor-Verdict/-Score/-Rules each, right values
check_headers() {
  local id=$1 f=$2 verdict=$3 action=$4 v s r lo hi rule; shift 4
  v=$(header_values "$f" X-Impostor-Verdict); s=$(header_values "$f" X-Impostor-Score); r=$(header_values "$f" X-Impostor-Rules)
  check "$id: exactly one X-Impostor-Verdict: $verdict (incoming ones removed)" "got: $(tr '\n' '|' <<<"$v")" [ "$v" = "$verdict" ]
  read -r lo hi < <(band "$action")
  check "$id: one X-Impostor-Score in the $action band [$lo, $hi) (score $s)" "got: $(tr '\n' '|' <<<"$s")" \
    eval '[ "$(count_lines "$s")" -eq 1 ] && score_in "$lo" "$hi" "$s"'
  check "$id: one X-Impostor-Rules header ($r)" "got: $(tr '\n' '|' <<<"$r")" [ "$(count_lines "$r")" -eq 1 ]
  for rule in "$@"; do
    check "$id: X-Impostor-Rules names $rule" "X-Impostor-Rules: $r" grep -qE "(^|[ ,])$rule=" <<<"$r"
  done
}

# impostor_logged ID: impostor logged exactly one verdict line with Sendmail's queue id
impostor_logged() {
  check "$1: impostor logged one line with Sendmail's queue id $QID (macro i)" \
    "$(grep -F "$QID" "$RUN/impostor.log" || tail -3 "$RUN/impostor.log")" [ "$(grep -cF "$QID" "$RUN/impostor.log")" -eq 1 ]
}

expect_delivered() {
  local id=$1 eml=$2 verdict=$3 action=$4 subject=$5 f got; shift 5
  sm_send "$id" "$MSGS/$eml"
  if [ "$SWAKS_RC" -ne 0 ] || [ -z "$QID" ]; then
    fail "$id: Sendmail accepts $eml (250 ... Message accepted)" "swaks rc=$SWAKS_RC" "$(swaks_reply)"; return
  fi
  pass "$id: Sendmail accepts $eml (queue id $QID)"
  if ! wait_sink "$id" 20; then
    fail "$id: delivered to smtp-sink" "$(sm_log | grep -F "$QID" | tail -5)"; return
  fi
  f=$(sink_file "$id")
  pass "$id: delivered to smtp-sink ($(basename "$f"))"
  check_headers "$id" "$f" "$verdict" "$action" "$@"
  got=$(header_values "$f" Subject)
  check "$id: Subject: $subject" "got Subject: $got" [ "$got" = "$subject" ]
  impostor_logged "$id"
}

# sm_queue_file QID: Sendmail's control file for QID (qf = queued, hf = quarantined)
sm_queue_file() { ls "$SM_DIR/mqueue/"[qh]f"$1" 2>/dev/null | head -1; }
sm_mailq_quarantine() { "${SMX[@]}" -bp -qQ 2>&1; }

expect_quarantined() {
  local id=$1 eml=$2 qf reason mq i; shift 2
  reason=$(sed -n 's/^reason = "\(.*\)"/\1/p' "$CONF"); reason=${reason:-impostor: suspected brand impersonation}
  sm_send "$id" "$MSGS/$eml"
  if [ "$SWAKS_RC" -ne 0 ] || [ -z "$QID" ]; then
    fail "$id: Sendmail accepts $eml (250 ... Message accepted)" "swaks rc=$SWAKS_RC" "$(swaks_reply)"; return
  fi
  pass "$id: Sendmail accepts $eml (queue id $QID; quarantine is silent to the client)"
  for ((i = 0; i < 50; i++)); do qf=$(sm_queue_file "$QID"); [ -n "$qf" ] && break; sleep 0.1; done
  check "$id: $QID is in Sendmail's quarantine (hf$QID, not qf$QID)" "queue files: $(ls "$SM_DIR/mqueue")" \
    [ "$(basename "${qf:-none}")" = "hf$QID" ]
  check "$id: the hf file has a q line with impostor's reason" "$(grep '^q' "$qf" 2>/dev/null || echo 'no q line')" \
    grep -qxF "q$reason" "$qf"
  mq=$(sm_mailq_quarantine)
  check "$id: mailq -qQ lists $QID with QUARANTINE: $reason" "$mq" \
    eval 'grep -A3 "^$QID" <<<"$mq" | grep -qF "QUARANTINE: $reason"'
  # the header lines of the held copy (H lines of the control file)
  sed -n -e 's/^H?[^?]*?//p' -e t -e 's/^H//p' -e t -e '/^[[:space:]]/p' "$qf" >"$RUN/held-$id.txt" 2>/dev/null
  check_headers "$id (held copy)" "$RUN/held-$id.txt" quarantine quarantine "$@"
  impostor_logged "$id"
  sleep 2
  check "$id: not delivered to smtp-sink" "$(grep -l "X-E2E-Case: $id" "$SINK_DIR"/* 2>/dev/null)" [ "$(sink_count "$id")" -eq 0 ]
  HELD_QID=$QID
}

# release: `sendmail -Q -qI<ID>` (-Q with no reason) unquarantines; a queue run delivers it
release_quarantined() {
  local id=$1 out
  out=$("${SMX[@]}" -qQ -qI"$HELD_QID" -Q 2>&1)
  check "$id: sendmail -qQ -qI$HELD_QID -Q unquarantines it (qf file back)" "$out; $(ls "$SM_DIR/mqueue")" \
    eval '[ "$(basename "$(sm_queue_file "$HELD_QID")")" = "qf$HELD_QID" ]'
  "${SMX[@]}" -q -qI"$HELD_QID" >/dev/null 2>&1
  if wait_sink "$id" 30; then
    pass "$id: released message delivered to smtp-sink"
    check_headers "$id (released)" "$(sink_file "$id")" quarantine quarantine
  else
    fail "$id: released message delivered to smtp-sink" "$(sm_log | grep -F "$HELD_QID" | tail -5)"
  fi
}

expect_refused() {
  local id=$1 eml=$2 code=$3 stage=$4
  sm_send "$id" "$MSGS/$eml"
  check "$id: client gets $code at $stage" "swaks rc=$SWAKS_RC; $(swaks_reply)" \
    eval 'grep -B1 -E "^<\*\* +${code//./\\.}( |$)" "$SWAKS_OUT" | grep -qE "^ -> $stage"'
  check "$id: no queue id given to the client" "queue id $QID" [ -z "$QID" ]
  sleep 1
  check "$id: not delivered to smtp-sink" "$(grep -l "X-E2E-Case: $id" "$SINK_DIR"/* 2>/dev/null)" [ "$(sink_count "$id")" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
say "impostor binary: $IMPOSTOR; Sendmail $SM_BIN"
start_syslog
start_sink || die "smtp-sink did not start"
CONF=$RUN/impostor.toml
write_conf "$CONF"
start_dns || die "dnsmasq did not start"
write_sendmail_cf || die "could not build sendmail.cf"
check "sendmail.cf has the impostor filter from deploy/sendmail.mc.snippet" "$(grep -E '^(X|O InputMailFilters|O Milter)' "$SM_CF")" \
  grep -qxF "Ximpostor, S=inet:$IMPOSTOR_PORT@127.0.0.1, F=T, T=S:10s;R:30s;E:2m" "$SM_CF"
check "sendmail.cf sends {auth_authen}, {client_addr}, {mail_addr} and i at MAIL FROM" "$(grep '^O Milter.macros' "$SM_CF")" \
  eval "grep '^O Milter.macros.envfrom=' '$SM_CF' | grep -F '{auth_authen}' | grep -F '{client_addr}' | grep -F '{mail_addr}' | grep -qE '=i,'"

start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not start"
start_sendmail || die "Sendmail did not start"

say "== the four messages"
expect_delivered sm-clean clean.eml accept accept "Lunch on Friday"
expect_delivered sm-tag tag.eml tag tag "[Suspected impersonation] Your invoice" BRAND_NAME_FOREIGN_DOMAIN
expect_quarantined sm-quarantine quarantine.eml BRAND_NAME_FOREIGN_DOMAIN LOOKALIKE_FROM_DOMAIN
expect_refused sm-reject reject.eml "550 5.7.1" "\\."
release_quarantined sm-quarantine

say "== one SMTP session, several transactions (per-transaction state, queue id per message)"
session_probe() {
  local n=${E2E_SESSION_MSGS:-20} t0 t1 ms before after ids got i
  before=$(grep -c 'verdict queue_id=' "$RUN/impostor.log")
  t0=$(date +%s%N)
  smtp-source -s 1 -m "$n" -l 2000 -f probe@example.org -t "$SWAKS_TO" -S "sendmail session probe" \
    "127.0.0.1:$SM_PORT" 2>"$RUN/smtp-source.err"
  t1=$(date +%s%N)
  ms=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / 1e6 / n }')
  say "one Sendmail SMTP session of $n messages: $ms ms per message"
  check "session: $n messages without client errors" "$(head -3 "$RUN/smtp-source.err")" [ ! -s "$RUN/smtp-source.err" ]
  for ((i = 0; i < 200; i++)); do
    got=$(grep -l '^Subject: sendmail session probe' "$SINK_DIR"/* 2>/dev/null | wc -l); [ "$got" -ge "$n" ] && break; sleep 0.1
  done
  check "session: all $n delivered to smtp-sink, once each" "$got delivered" [ "$got" -eq "$n" ]
  after=$(grep -c 'verdict queue_id=' "$RUN/impostor.log")
  ids=$(grep 'verdict queue_id=' "$RUN/impostor.log" | tail -n +"$((before + 1))" | sed 's/.*queue_id="\([^"]*\)".*/\1/' | sort -u | grep -vc '^-$')
  check "session: impostor logged $n verdicts with $n distinct queue ids" "$((after - before)) verdicts, $ids distinct ids" \
    eval '[ "$((after - before))" -eq "$n" ] && [ "$ids" -eq "$n" ]'
}
session_probe

say "== impostor down: F=T"
stop_impostor
check "impostor exits 0 on SIGTERM" "exit status $STOPPED_RC; $(tail -3 "$RUN/impostor.log")" [ "${STOPPED_RC:-x}" = 0 ]
expect_refused sm-down clean.eml "451 4.3.2" "MAIL FROM"
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not restart"
expect_delivered sm-down clean.eml accept accept "Lunch on Friday"
check "sm-down: delivered exactly once" "$(sink_count sm-down) copies" [ "$(sink_count sm-down)" -eq 1 ]

say "== unix socket: S=local:PATH (the directory must not be group/world-writable for Sendmail)"
stop_impostor
SOCK_DIR=$(mktemp -d /run/impostor-e2e.XXXXXX) || die "cannot create a socket directory in /run"
chmod 755 "$SOCK_DIR"
SOCK=$SOCK_DIR/impostor.sock
write_conf "$RUN/impostor-unix.toml" '[milter]' "socket = \"unix:$SOCK\""
start_impostor -c "$RUN/impostor-unix.toml" --socket "unix:$SOCK" || die "impostor did not start on $SOCK"
stop_sendmail
write_sendmail_cf "local:$SOCK" || die "could not rebuild sendmail.cf"
start_sendmail || die "Sendmail did not restart"
expect_delivered sm-unix-tag tag.eml tag tag "[Suspected impersonation] Your invoice" BRAND_NAME_FOREIGN_DOMAIN
expect_refused sm-unix-reject reject.eml "550 5.7.1" "\\."
stop_impostor
check "impostor removed its unix socket on exit" "$(ls -l "$SOCK" 2>&1)" [ ! -e "$SOCK" ]

say "== logs"
if [ -s "$SM_LOG" ]; then
  check "Sendmail logged the quarantine of $HELD_QID" "$(sm_log | grep -F "$HELD_QID" | head -5)" \
    eval 'sm_log | grep -F "$HELD_QID" | grep -q "quarantine="'
  check "Sendmail logged the connection refusal while impostor was down (F=T)" "$(sm_log | grep -i milter | tail -5)" \
    eval 'sm_log | grep -q "Milter (impostor): .*error connecting to filter"'
  # expected milter errors: the refused connection(s) while impostor was down; nothing else
  sm_milter_errors() { sm_log | grep -E 'Milter \(impostor\)' | grep -iE 'error|timeout|unknown|abort|fail' | grep -vE 'error connecting to filter|to error state'; }
  check "Sendmail logged no other milter errors" "$(sm_milter_errors | tail -5)" eval '! sm_milter_errors | grep -q .'
else
  say "no Sendmail log in $SM_LOG (another syslog owns /dev/log): log checks skipped"
fi
check "impostor logged no panic or error" "$(grep -iE 'panick?ed|ERROR' "$RUN/impostor.log" | head -3)" \
  eval '! grep -qiE "panick?ed| ERROR " "$RUN/impostor.log"'

say "e2e took $(($(date +%s) - T0)) s"
summary
