# shellcheck shell=bash
# tests/e2e/lib.sh: helpers for impostor's end-to-end tests (source this file, do not run it).
#
# What it sets up, on loopback only, and all of it private to one run directory:
#   smtp-sink   127.0.0.1:$SINK_PORT   the next hop; dumps every message it receives to $RUN/sink/
#   Postfix     127.0.0.1:$PF_PORT     a separate instance (postfix -c $PF_CONF) with its own queue,
#                                       data directory and log under $RUN; /etc/postfix and the
#                                       system queue are never touched
#   impostor    inet:127.0.0.1:$IMPOSTOR_PORT or unix:$IMPOSTOR_SOCK
#   dnsmasq     127.0.0.1:$DNS_PORT   answers NXDOMAIN for every name, so impostor's SPF/DKIM/DMARC
#                                       lookups stay on loopback and get fast, definite answers
#
# Everything started here is stopped by PID (pid files in $RUN) or with `postfix -c $PF_CONF stop`
# by the EXIT trap that e2e_init installs. Never pkill/killall.
#
# Environment (all optional):
#   PF_PORT=2525 SINK_PORT=2526 IMPOSTOR_PORT=17357 METRICS_PORT=19357 IMPOSTOR_SOCK=$RUN/impostor.sock DNS_PORT=5353
#   IMPOSTOR=path/to/impostor (default: $REPO/target/debug/impostor)
#   E2E_RUN=dir   use this run directory instead of a fresh mktemp one
#   E2E_KEEP=1    keep the run directory (logs, sink dumps) even when every check passed

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
PF_PORT=${PF_PORT:-2525}
SINK_PORT=${SINK_PORT:-2526}
# not the daemon's own defaults (7357, 9357): the tests run beside a running `impostor serve`
IMPOSTOR_PORT=${IMPOSTOR_PORT:-17357}
DNS_PORT=${DNS_PORT:-5353}
METRICS_PORT=${METRICS_PORT:-19357}
IMPOSTOR=${IMPOSTOR:-$REPO/target/debug/impostor}
SWAKS_TO=${SWAKS_TO:-bob@rcpt.example}
PASSED=0
FAILED=0

# ---------------------------------------------------------------------------------------------
# Output and checks
say() { printf '# %s\n' "$*"; }
die() { printf 'e2e: fatal: %s\n' "$*" >&2; exit 2; }

# pass NAME / fail NAME [EVIDENCE...]: one line per check, evidence indented below a failure.
pass() { PASSED=$((PASSED + 1)); printf 'ok - %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1)); printf 'not ok - %s\n' "$1"; shift
  local line
  for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}
# check NAME EVIDENCE CMD...: pass if CMD succeeds, else fail with EVIDENCE.
check() { local name=$1 evidence=$2; shift 2; if "$@"; then pass "$name"; else fail "$name" "$evidence"; fi; }
summary() { printf '%d passed, %d failed\n' "$PASSED" "$FAILED"; [ "$FAILED" -eq 0 ]; }

# ---------------------------------------------------------------------------------------------
# Packages
# install_deps: postfix (smtpd, smtp-sink, smtp-source, postqueue), swaks, dnsmasq-base (the
# loopback DNS), python3-dkim (dkimsign), openssl, and for Sendmail m4, busybox, liblockfile1 and
# libwrap0; installs only what is missing, as root.
install_deps() {
  local missing=()
  [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
  command -v swaks >/dev/null 2>&1 || missing+=(swaks)
  [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
  command -v dkimsign >/dev/null 2>&1 || missing+=(python3-dkim)   # independent DKIM signer (tests/auth_dns.rs)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # tests/e2e/sendmail.sh: m4 builds sendmail.cf; busybox syslogd is Sendmail's log; the two
  # libraries of the unpacked (not installed) sendmail-bin that a Postfix machine lacks
  command -v m4 >/dev/null 2>&1 || missing+=(m4)
  command -v busybox >/dev/null 2>&1 || missing+=(busybox)
  local p
  for p in liblockfile1 libwrap0; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "e2e: missing packages: ${missing[*]} (not root: install them with apt-get, then rerun)" >&2
    return 1
  fi
  say "installing ${missing[*]}"
  # "No configuration": binaries only, no /etc/postfix/main.cf, nothing started (we run our own instance)
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string mta.example.test" | debconf-set-selections
  if [ -z "${E2E_APT_UPDATED:-}" ]; then apt-get update -q; E2E_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------------------------------------
# Run directory, pid files, ports
e2e_init() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it starts a Postfix instance)"
  if [ -n "${E2E_RUN:-}" ]; then RUN=$E2E_RUN; mkdir -p "$RUN"; else RUN=$(mktemp -d /tmp/impostor-e2e.XXXXXX); fi
  chmod 755 "$RUN"                       # Postfix daemons (user postfix) and smtp-sink (nobody) walk through it
  IMPOSTOR_SOCK=${IMPOSTOR_SOCK:-$RUN/impostor.sock}
  PF_CONF=$RUN/postfix/etc
  PF_QUEUE=$RUN/postfix/spool
  PF_LOG=$RUN/postfix.log
  SINK_DIR=$RUN/sink
  mkdir -p "$SINK_DIR" "$RUN/swaks"
  chown nobody "$SINK_DIR"
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  say "run directory $RUN"
}

# port_listening PORT: something accepts TCP on 127.0.0.1:PORT
port_listening() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnH "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# wait_port PORT [SECONDS]: wait until 127.0.0.1:PORT listens
wait_port() {
  local i
  for ((i = 0; i < ${2:-10} * 10; i++)); do port_listening "$1" && return 0; sleep 0.1; done
  echo "e2e: nothing listening on 127.0.0.1:$1" >&2; return 1
}
port_free() { ! port_listening "$1" || { echo "e2e: 127.0.0.1:$1 is already in use" >&2; return 1; }; }

# stop_pidfile FILE: SIGTERM the PID in FILE (a process we started), wait up to 10 s, then SIGKILL.
# Leaves the exit status in STOPPED_RC when the process was our child (wait works), else empty.
stop_pidfile() {
  local f=$1 p i
  STOPPED_RC=
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then echo "e2e: pid $p ignored SIGTERM for 10 s, sending SIGKILL" >&2; kill -KILL "$p"; fi
  fi
  if [ -n "$p" ]; then wait "$p" 2>/dev/null; STOPPED_RC=$?; fi
  rm -f "$f"
}

# ---------------------------------------------------------------------------------------------
# smtp-sink: the next hop. Every message becomes one file $SINK_DIR/<time>.<random>.
start_sink() {
  port_free "$SINK_PORT" || return 1
  /usr/sbin/smtp-sink -u nobody -d "$SINK_DIR/%Y%m%d%H%M%S." "127.0.0.1:$SINK_PORT" 256 \
    </dev/null >"$RUN/sink.log" 2>&1 &
  echo $! >"$RUN/sink.pid"
  wait_port "$SINK_PORT" || { cat "$RUN/sink.log" >&2; return 1; }
  say "smtp-sink pid $(cat "$RUN/sink.pid") on 127.0.0.1:$SINK_PORT, dumping to $SINK_DIR"
}

# ---------------------------------------------------------------------------------------------
# dnsmasq on 127.0.0.1:$DNS_PORT: NXDOMAIN for every name, nothing forwarded anywhere.
# start_dns [DNSMASQ ARG...]: extra args add records, e.g. --txt-record=example.com,"v=spf1 -all"
start_dns() {
  port_free "$DNS_PORT" || return 1
  /usr/sbin/dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --no-poll --address='/#/' --user=nobody --pid-file= --log-queries \
    --log-facility="$RUN/dnsmasq.log" "$@" </dev/null >"$RUN/dnsmasq.out" 2>&1 &
  echo $! >"$RUN/dns.pid"
  wait_port "$DNS_PORT" || { cat "$RUN/dnsmasq.out" >&2; return 1; }
  say "dnsmasq pid $(cat "$RUN/dns.pid") on 127.0.0.1:$DNS_PORT ($# test records; NXDOMAIN for every other name)"
}

# ---------------------------------------------------------------------------------------------
# Postfix: a private instance. MILTERS="inet:127.0.0.1:7357" start_postfix (MILTERS=none: no milter)
postfix_running() { [ -d "$PF_CONF" ] && postfix -c "$PF_CONF" status >/dev/null 2>&1; }

start_postfix() {
  local milters=${MILTERS:-inet:127.0.0.1:$IMPOSTOR_PORT}
  [ "$milters" = none ] && milters=
  if postfix_running; then postfix -c "$PF_CONF" stop >/dev/null 2>&1; fi
  port_free "$PF_PORT" || return 1
  mkdir -p "$PF_CONF" "$PF_QUEUE"    # data_directory: created by "postfix check", owned by postfix
  cp /etc/postfix/dynamicmaps.cf "$PF_CONF/" 2>/dev/null || true
  cat >"$PF_CONF/main.cf" <<EOF
# Written by tests/e2e/lib.sh for one test run: a private Postfix instance on 127.0.0.1:$PF_PORT.
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $RUN/postfix/data
myhostname = mta.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
# RFC 5737 TEST-NETs appear only as XCLIENT metadata (swaks --xclient ADDR=203.0.113.7), so the
# milter sees a remote client; no packet goes there. They are in mynetworks so relaying works.
mynetworks = 127.0.0.0/8 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_banner = \$myhostname ESMTP
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
# no syslog daemon needed: postlogd writes this file (the prefix list must allow the path)
maillog_file = $PF_LOG
maillog_file_prefixes = /var, /dev/stdout, $RUN
# next hop: smtp-sink; brackets = no MX lookup; no DNS at all
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
# ---- milter ----
smtpd_milters = $milters
non_smtpd_milters = $milters
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 60s
milter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_type} {auth_authen}
EOF
  # master.cf: Debian's default, smtpd moved to 127.0.0.1:$PF_PORT, chroot off everywhere
  # (a chrooted smtpd could not reach a milter socket outside the queue directory).
  cp /usr/share/postfix/master.cf.dist "$PF_CONF/master.cf"
  postconf -c "$PF_CONF" -M# 'smtp/inet'
  postconf -c "$PF_CONF" -M "127.0.0.1:$PF_PORT/inet=127.0.0.1:$PF_PORT inet n - n - - smtpd"
  postconf -c "$PF_CONF" -F '*/*/chroot = n'
  touch "$PF_LOG"
  postfix -c "$PF_CONF" check || return 1
  postfix -c "$PF_CONF" start >/dev/null 2>&1 || { tail -20 "$PF_LOG" >&2; return 1; }
  wait_port "$PF_PORT" || { tail -20 "$PF_LOG" >&2; return 1; }
  say "Postfix (config $PF_CONF) on 127.0.0.1:$PF_PORT, milters: ${milters:-none}"
}

# set_milters SPEC: point the running Postfix at another milter socket (postfix reload)
set_milters() {
  postconf -c "$PF_CONF" -e "smtpd_milters = $1" "non_smtpd_milters = $1"
  postfix -c "$PF_CONF" reload >/dev/null 2>&1
  sleep 1    # let master restart smtpd with the new setting
  say "Postfix milters now: $1"
}

stop_postfix() {
  if postfix_running; then postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true; fi
}

# ---------------------------------------------------------------------------------------------
# impostor: start_impostor ARGS... (after `serve`), e.g. start_impostor --socket unix:$IMPOSTOR_SOCK
# Waits until the socket accepts connections. stderr goes to $RUN/impostor.log (appended).
start_impostor() {
  local sock=inet:127.0.0.1:$IMPOSTOR_PORT a prev=
  for a in "$@"; do [ "$prev" = --socket ] && sock=$a; prev=$a; done
  [ -x "$IMPOSTOR" ] || { echo "e2e: no impostor binary at $IMPOSTOR (cargo build, or set IMPOSTOR)" >&2; return 1; }
  case $sock in inet:*) port_free "${sock##*:}" || return 1 ;; esac
  echo "--- $(date +%T) impostor serve $*" >>"$RUN/impostor.log"
  "$IMPOSTOR" serve "$@" </dev/null >>"$RUN/impostor.log" 2>&1 &
  echo $! >"$RUN/impostor.pid"
  wait_socket "$sock" "$(cat "$RUN/impostor.pid")" || { tail -20 "$RUN/impostor.log" >&2; return 1; }
  say "impostor pid $(cat "$RUN/impostor.pid") on $sock ${*:+(serve $*)}"
}
# wait_socket inet:HOST:PORT|unix:PATH [PID]: wait up to 10 s; fail early when PID died
wait_socket() {
  local i
  for ((i = 0; i < 100; i++)); do
    case $1 in
      inet:*) port_listening "${1##*:}" && return 0 ;;
      unix:*) [ -S "${1#unix:}" ] && return 0 ;;
    esac
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then echo "e2e: pid $2 exited before $1 was ready" >&2; return 1; fi
    sleep 0.1
  done
  echo "e2e: $1 not ready after 10 s" >&2; return 1
}
stop_impostor() { stop_pidfile "$RUN/impostor.pid"; }

# The reference milter from ../shared/recipes (for debugging the plumbing without impostor):
#   start_spy unix:/path | inet:PORT@127.0.0.1 [--action accept|quarantine|reject|tempfail]
start_spy() {
  local spy=${SPY_MILTER:-$REPO/../shared/recipes/spy-milter.py}
  python3 "$spy" "$@" --log "$RUN/spy.log" </dev/null >>"$RUN/spy.out" 2>&1 &
  echo $! >"$RUN/spy.pid"
  case $1 in inet:*) local p=${1#inet:}; wait_socket "inet:127.0.0.1:${p%@*}" "$(cat "$RUN/spy.pid")" ;;
             *) wait_socket "$1" "$(cat "$RUN/spy.pid")" ;; esac
}

# ---------------------------------------------------------------------------------------------
# Sending and looking at what arrived
# send_eml CASE_ID FILE [swaks args...]: send FILE through Postfix as a remote client (XCLIENT),
# with an added "X-E2E-Case: CASE_ID" header to find it again. Transcript: $RUN/swaks/CASE_ID.txt.
# Sets SWAKS_RC, SWAKS_OUT (file), QID (queue id from "250 ... queued as QID", or empty).
send_eml() {
  local id=$1 file=$2 from; shift 2
  from=$(sed -n 's/^From:.*<\([^>]*\)>.*/\1/p; /^$/q' "$file" | head -1)
  SWAKS_OUT=$RUN/swaks/$id.txt
  swaks --server "127.0.0.1:$PF_PORT" --timeout 60 \
    --xclient "ADDR=${XCLIENT_ADDR:-203.0.113.7} NAME=[UNAVAILABLE]" --helo client.example.test \
    --from "${from:-sender@example.org}" --to "$SWAKS_TO" \
    --data "@$file" --add-header "X-E2E-Case: $id" "$@" </dev/null >"$SWAKS_OUT" 2>&1
  SWAKS_RC=$?
  QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$SWAKS_OUT" | tail -1)
}
# swaks_reply: the server's error replies and the final 250 of the last transaction (evidence)
swaks_reply() { grep -E '^<\*\*|^<-  250 .*queued|^\*\*\*' "$SWAKS_OUT" | grep -v DEPRECAT; }

# queue_json: this instance's queue, one JSON object per message (postqueue -j)
queue_json() { postqueue -c "$PF_CONF" -j 2>/dev/null; }
# in_queue QID [QUEUE]: QID is in the queue (optionally: in the named queue, e.g. hold)
in_queue() {
  local l
  l=$(queue_json | grep -F "\"queue_id\": \"$1\"") || return 1
  [ -z "${2:-}" ] || grep -qF "\"queue_name\": \"$2\"" <<<"$l"
}
# queue_busy: messages other than held ones are still in the queue
queue_busy() { queue_json | grep -v '"queue_name": "hold"' | grep -q .; }
# wait_queue [SECONDS]: wait until only held messages (if any) remain
wait_queue() {
  local i
  for ((i = 0; i < ${1:-20} * 10; i++)); do queue_busy || return 0; sleep 0.1; done
  return 1
}
# sink_file CASE_ID: the dump of the message with that X-E2E-Case header (empty if none)
sink_file() { grep -lE "^X-E2E-Case: $1"$'\r'"?\$" "$SINK_DIR"/* 2>/dev/null | head -1; }
sink_count() { grep -lE "^X-E2E-Case: $1"$'\r'"?\$" "$SINK_DIR"/* 2>/dev/null | wc -l; }
# wait_sink CASE_ID [SECONDS]: wait until that message was delivered to smtp-sink
wait_sink() {
  local i
  for ((i = 0; i < ${2:-20} * 10; i++)); do [ -n "$(sink_file "$1")" ] && return 0; sleep 0.1; done
  return 1
}
# header_values FILE NAME: every value of header NAME (case-insensitive), folded lines joined
header_values() {
  tr -d '\r' <"$1" | awk -v want="$(tr '[:upper:]' '[:lower:]' <<<"$2")" '
    /^$/ { exit }
    /^[ \t]/ { if (cur != "") cur = cur " " substr($0, match($0, /[^ \t]/)); next }
    { if (cur != "") print cur; cur = ""
      i = index($0, ":"); if (i == 0) next
      if (tolower(substr($0, 1, i - 1)) == want) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); cur = v; if (v == "") cur = " " } }
    END { if (cur != "") print cur }' | sed 's/^ $//'
}
# headers_of FILE: the header section of a dump, minus smtp-sink's X-Client-* style lines (evidence)
headers_of() { tr -d '\r' <"$1" | sed -n '/^$/q; p' | grep -vE '^X-(Client|Helo|Mail|Rcpt)-'; }

# ---------------------------------------------------------------------------------------------
e2e_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pidfile "$RUN/spy.pid"
  stop_impostor
  if postfix_running; then
    postsuper -c "$PF_CONF" -d ALL hold >/dev/null 2>&1 || true
    postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1 || true
    stop_postfix
  fi
  stop_pidfile "$RUN/sink.pid"
  stop_pidfile "$RUN/dns.pid"
  if [ "$rc" -eq 0 ] && [ -z "${E2E_KEEP:-}" ] && [ -z "${E2E_RUN:-}" ]; then
    rm -rf "$RUN"
  else
    say "logs kept in $RUN (postfix.log, impostor.log, swaks/, sink/)"
  fi
  exit "$rc"
}

# Explicit config files, so a /etc/impostor/impostor.toml on this machine cannot change the results:
# built-in defaults (thresholds 5/10/15, brand OpenAI), DNS only via the loopback dnsmasq.
# write_conf FILE [TOML LINE...]
write_conf() {
  local f=$1; shift
  {
    echo "# written by tests/e2e (lib.sh write_conf)"
    printf '%s\n' "$@"
    printf '[dns]\nnameservers = ["127.0.0.1:%s"]\n' "$DNS_PORT"
    printf '[metrics]\nlisten = "127.0.0.1:%s"\n' "$METRICS_PORT"
  } >"$f"
  "$IMPOSTOR" config check -c "$f" >/dev/null || die "impostor config check -c $f failed: $(cat "$f")"
}

