#!/usr/bin/env bash
# tests/e2e/review.sh: `impostor review` (the quarantine review page) on a real Postfix hold queue,
# driven by a real browser (Debian's /usr/bin/chromium through npm playwright-core).
#
#   swaks -> Postfix 127.0.0.1:$PF_PORT -> impostor (quarantine) -> hold queue
#   chromium -> impostor review 127.0.0.1:$REVIEW_PORT -> postqueue/postcat/postsuper -c $PF_CONF
#
# Checks: a non-loopback review.listen without review.allow_remote refuses to start (file, key,
# value named); --init-token writes a 0600 file; no token -> 401, no CSRF token -> 403 (curl); in
# the browser: login, filter, the <script> Subject and HTML body shown as text, links defanged,
# release one, "release and report false positive" one; then what Postfix did (both left the hold
# queue and reached smtp-sink), the feedback files, `impostor scan --expect ham` on them, the
# action log lines. Screenshots go to $SHOTS (REVIEW_SHOTS=docs/img refreshes docs/review.md's).
#
# Installs what it needs (install_deps; chromium via apt, playwright-core via npm into
# target/e2e-node). Needs root. Ports: Postfix 2725, sink 2726, impostor 7557, DNS 5553,
# metrics 9459, review 9458 (and 9460 for the refused listen). "N passed, M failed" at the end.
set -uo pipefail
export PF_PORT=${PF_PORT:-2725} SINK_PORT=${SINK_PORT:-2726} IMPOSTOR_PORT=${IMPOSTOR_PORT:-7557}
export DNS_PORT=${DNS_PORT:-5553} METRICS_PORT=${METRICS_PORT:-9459}
REVIEW_PORT=${REVIEW_PORT:-9458}
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
MSGS=$E2E_DIR/msgs
T0=$(date +%s)

install_deps || exit 2
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  if [ -z "${E2E_APT_UPDATED:-}" ]; then apt-get update -q; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium </dev/null || die "apt-get install chromium failed"
fi
command -v npm >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm </dev/null || die "no npm"; }
NODE_DIR=$REPO/target/e2e-node
if ! cmp -s "$E2E_DIR/review/package.json" "$NODE_DIR/package.json" || [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
  mkdir -p "$NODE_DIR" && cp "$E2E_DIR/review/package.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error) || die "npm install playwright-core failed"
fi
cp "$E2E_DIR/review/review.mjs" "$NODE_DIR/"    # ESM resolves playwright-core from the script's directory
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (run cargo build, or set IMPOSTOR=...)"
e2e_init
SHOTS=${REVIEW_SHOTS:-$RUN/shots}
mkdir -p "$SHOTS"; SHOTS=$(cd "$SHOTS" && pwd)
REVIEW_LOG=$RUN/review.log

stop_review() { stop_pidfile "$RUN/review.pid"; }
trap 'rc=$?; stop_review; (exit $rc); e2e_cleanup' EXIT   # e2e_cleanup exits with the status it finds

# ---- configuration: the refused non-loopback listen, the token file
FB=$RUN/feedback
TOKENS=$RUN/review.tokens
CONF=$RUN/impostor.toml
write_conf "$CONF" "[review]" "listen = \"127.0.0.1:$REVIEW_PORT\"" "token_file = \"$TOKENS\"" "feedback_dir = \"$FB\""
BAD=$RUN/remote.toml
printf '[review]\nlisten = "0.0.0.0:9460"\ntoken_file = "%s"\n' "$TOKENS" >"$BAD"
out=$(timeout 5 "$IMPOSTOR" review -c "$BAD" 2>&1 </dev/null; echo "exit=$?")
check "a non-loopback review.listen without allow_remote refuses to start, naming file, key and value" "$out" \
  eval 'grep -qF "$BAD:2: review.listen: \"0.0.0.0:9460\" is not a loopback address" <<<"$out" && grep -q "review.allow_remote = true" <<<"$out" && grep -q "exit=1" <<<"$out"'
check "nothing listens on 9460" "$(ss -ltn 2>/dev/null | grep 9460)" eval '! port_listening 9460'
TOKEN=$("$IMPOSTOR" review -c "$CONF" --init-token --name e2e-reviewer 2>/dev/null | sed -n 's/^e2e-reviewer://p')
check "--init-token prints a token and writes the file with mode 0600" "token '$TOKEN', mode $(stat -c %a "$TOKENS" 2>&1)" \
  eval '[ ${#TOKEN} -eq 64 ] && [ "$(stat -c %a "$TOKENS")" = 600 ]'

# ---- three held messages
start_sink || die "smtp-sink did not start"
start_dns || die "dnsmasq did not start"
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not start"
start_postfix || die "Postfix did not start"
hold() { # hold CASE FILE -> sets HQ to its queue id once it is in the hold queue
  local i
  send_eml "$1" "$2"; HQ=$QID
  for ((i = 0; i < 100; i++)); do in_queue "$HQ" hold && break; sleep 0.1; done
  check "$1: $HQ is on hold" "$(swaks_reply) / $(queue_json)" in_queue "$HQ" hold
}
hold review-hostile "$MSGS/review-hostile.eml"; HOSTILE_QID=$HQ
hold review-release "$MSGS/quarantine.eml"; RELEASE_QID=$HQ
hold review-ham "$MSGS/quarantine.eml"; HAM_QID=$HQ

# ---- the review page
say "impostor review on 127.0.0.1:$REVIEW_PORT"
port_free "$REVIEW_PORT" || die "port $REVIEW_PORT in use"
"$IMPOSTOR" review -c "$CONF" --postfix-config "$PF_CONF" </dev/null >>"$REVIEW_LOG" 2>&1 &
echo $! >"$RUN/review.pid"
wait_socket "inet:127.0.0.1:$REVIEW_PORT" "$(cat "$RUN/review.pid")" || { cat "$REVIEW_LOG" >&2; die "impostor review did not start"; }
URL=http://127.0.0.1:$REVIEW_PORT
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "GET / without a token: 401" "$(code "$URL/")" [ "$(code "$URL/")" = 401 ]
check "POST release without a token: 401" "" [ "$(code -X POST -d csrf=x "$URL/message/$RELEASE_QID/release")" = 401 ]
check "POST release with the token but no CSRF token: 403" "" \
  [ "$(code -X POST -H "Authorization: Bearer $TOKEN" -d x=1 "$URL/message/$RELEASE_QID/release")" = 403 ]
check "POST release with a wrong CSRF token: 403" "" \
  [ "$(code -X POST -H "Authorization: Bearer $TOKEN" -d csrf=0123 "$URL/message/$RELEASE_QID/release")" = 403 ]
check "after the refused requests $RELEASE_QID is still held" "$(queue_json)" in_queue "$RELEASE_QID" hold
check "a request naming another host (DNS rebinding) with the token: 403" "" \
  [ "$(code -H "Host: rebound.attacker.example:$REVIEW_PORT" -H "Authorization: Bearer $TOKEN" "$URL/")" = 403 ]
hdrs=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL/")
check "GET / with the Bearer token: 200 and a strict CSP" "$hdrs" \
  eval 'grep -q "^HTTP/1.1 200" <<<"$hdrs" && grep -qi "^content-security-policy: default-src '"'"'none'"'"'; style-src '"'"'self'"'"'" <<<"$hdrs"'

say "browser: chromium via playwright-core"
bout=$(cd "$NODE_DIR" && REVIEW_URL=$URL REVIEW_TOKEN=$TOKEN HOSTILE_QID=$HOSTILE_QID RELEASE_QID=$RELEASE_QID HAM_QID=$HAM_QID \
  HOSTILE_DOMAIN=signin-alert.example SHOTS=$SHOTS timeout 90 node "$NODE_DIR/review.mjs" 2>&1)
brc=$?
while IFS= read -r l; do
  case $l in PASS\ *) pass "browser: ${l#PASS }" ;; FAIL\ *) fail "browser: ${l#FAIL }" "" ;; *) [ -n "$l" ] && say "node: $l" ;; esac
done <<<"$bout"
check "browser script exit 0 with checks run" "exit $brc" eval '[ $brc -eq 0 ] && grep -q "^PASS" <<<"$bout"'

# ---- what Postfix did
for q in "$RELEASE_QID" "$HAM_QID"; do
  check "$q left the hold queue" "$(queue_json)" eval '! in_queue "$q" hold'
done
check "$HOSTILE_QID is still held" "$(queue_json)" in_queue "$HOSTILE_QID" hold
check "released review-release reached smtp-sink" "$(ls "$SINK_DIR")" wait_sink review-release 20
check "released review-ham reached smtp-sink" "$(ls "$SINK_DIR")" wait_sink review-ham 20
check "feedback: ham/$HAM_QID.eml and .json written" "$(find "$FB" -type f 2>&1)" \
  eval '[ -s "$FB/ham/$HAM_QID.eml" ] && [ -s "$FB/ham/$HAM_QID.json" ]'
check "feedback: the .eml is the held copy with its verdict headers" "$(head -5 "$FB/ham/$HAM_QID.eml" 2>&1)" \
  grep -q "^X-E2E-Case: review-ham" "$FB/ham/$HAM_QID.eml"
check "feedback: the .json names reviewer and verdict" "$(head -c 600 "$FB/ham/$HAM_QID.json" 2>&1)" \
  eval 'grep -q "\"reviewer\": \"e2e-reviewer\"" "$FB/ham/$HAM_QID.json" && grep -q "\"action\": \"quarantine\"" "$FB/ham/$HAM_QID.json"'
scan=$("$IMPOSTOR" scan --expect ham "$FB/ham" 2>&1; echo "exit=$?")
check "impostor scan --expect ham FEEDBACK/ham reads the report (the .json beside it is no message)" "$scan" \
  eval 'grep -q "^scanned 1 messages (0 unreadable)" <<<"$scan" && grep -q "^expected ham: 1 messages" <<<"$scan" && grep -q "exit=0" <<<"$scan"'
check "the action log names who, what and the queue id (release)" "$(grep 'action done' "$REVIEW_LOG")" \
  eval 'grep "review: action done" "$REVIEW_LOG" | grep "e2e-reviewer" | grep "release" | grep -q "$RELEASE_QID"'
check "the action log names who, what and the queue id (release-ham)" "$(grep 'action done' "$REVIEW_LOG")" \
  eval 'grep "review: action done" "$REVIEW_LOG" | grep "release-ham" | grep -q "$HAM_QID"'
check "screenshots taken" "$(ls "$SHOTS")" eval '[ -s "$SHOTS/review-list.png" ] && [ -s "$SHOTS/review-message.png" ]'

stop_review
check "impostor review exits 0 on SIGTERM" "exit $STOPPED_RC; $(tail -3 "$REVIEW_LOG")" [ "${STOPPED_RC:-x}" = 0 ]
say "review e2e took $(($(date +%s) - T0)) s"
summary
