#!/usr/bin/env bash
# scripts/review-load.sh: times `impostor review` on a hold queue of N (default 10,000) messages.
#
# Fills a private Postfix instance's hold queue quickly: no milter; a header_checks rule HOLDs every
# message that carries X-Impostor-Verdict: quarantine (the headers impostor adds, written by the
# sender here: 4 variants, the OpenAI brand claimed or not, different sender domains and rules), sent by
# python3 smtplib over 4 parallel SMTP sessions. Then starts `impostor review` and times with curl:
# the first list page (cold: it waits for the read of the whole queue that `impostor review` starts
# at start-up; the log line "review: hold queue read held=N ms=M" gives that time), the first page
# again (warm: one postqueue -j pass), a filtered page, a sorted page deep in the list, one message
# view; then `impostor quarantine list --json`.
#
#   N=10000 IMPOSTOR=target/release/impostor bash scripts/review-load.sh
# Needs root (a Postfix instance). Ports: Postfix 2727, sink 2728, DNS unused, review 9461.
set -uo pipefail
export PF_PORT=${PF_PORT:-2727} SINK_PORT=${SINK_PORT:-2728} IMPOSTOR_PORT=${IMPOSTOR_PORT:-7558}
export DNS_PORT=${DNS_PORT:-5554} METRICS_PORT=${METRICS_PORT:-9462}
REVIEW_PORT=${REVIEW_PORT:-9461}
N=${N:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
install_deps || exit 2
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR"
e2e_init
stop_review() { stop_pidfile "$RUN/review.pid"; }
trap 'rc=$?; stop_review; (exit $rc); e2e_cleanup' EXIT   # e2e_cleanup exits with the status it finds

MILTERS=none start_postfix || die "Postfix did not start"
echo '/^X-Impostor-Verdict: quarantine/ HOLD held for the review load test' >"$PF_CONF/header_checks"
postconf -c "$PF_CONF" -e "header_checks = regexp:$PF_CONF/header_checks" "smtpd_client_connection_rate_limit = 0" \
  "smtpd_client_message_rate_limit = 0" "default_process_limit = 20"
postfix -c "$PF_CONF" reload >/dev/null 2>&1; sleep 1

say "sending $N messages"
t0=$(date +%s.%N)
python3 - "$PF_PORT" "$N" <<'PY' || die "sending failed"
import smtplib, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
V = [
  ("security@account-notice.example", "OpenAI: unusual sign-in to your account", "12.0", "BRAND_NAME_FOREIGN_DOMAIN=6, IMPERSONATION=6",
   "We detected an unusual sign-in.\nReview: https://account-review.example/activity\n"),
  ("billing@openai-invoices.example", "Your OpenAI invoice is overdue", "13.5", "LOOKALIKE_FROM_DOMAIN=7.5, IMPERSONATION=6",
   "Pay now: https://openai-invoices.example/pay\n"),
  ("hr@recruit-team.example", "Job offer from OpenAI", "10.5", "BRAND_NAME_FOREIGN_DOMAIN=6, LURE_ACCOUNT_THREAT=1.5, CALL_TO_ACTION=3",
   "Send us your details.\n"),
  ("news@plain-sender.example", "Weekly digest", "11.0", "DISPLAY_NAME_MISMATCH=5, CALL_TO_ACTION=6",
   "Nothing to see.\n"),
]
def worker(k, count):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    for i in range(count):
        j = k * 100000 + i
        frm, subj, score, rules, body = V[j % len(V)]
        name = "OpenAI Security" if j % 4 != 3 else "Digest"
        msg = (f"X-Impostor-Verdict: quarantine\r\nX-Impostor-Score: {score}\r\nX-Impostor-Rules: {rules}\r\n"
               f"From: \"{name}\" <{frm}>\r\nTo: user{j % 50}@rcpt.example\r\nSubject: {subj} #{j}\r\n"
               f"Message-ID: <load-{j}@x.example>\r\n\r\n{body}")
        s.sendmail(frm, [f"user{j % 50}@rcpt.example"], msg.encode())
    s.quit()
ts = [threading.Thread(target=worker, args=(k, n // 4 + (1 if k < n % 4 else 0))) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
t1=$(date +%s.%N)
for ((i = 0; i < 600; i++)); do
  held=$(postqueue -c "$PF_CONF" -j | grep -c '"queue_name": "hold"')
  [ "$held" -ge "$N" ] && break; sleep 1
done
say "$held messages on hold (sent in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s)"
[ "$held" -ge "$N" ] || die "only $held of $N messages reached the hold queue"

TOKENS=$RUN/review.tokens
CONF=$RUN/impostor.toml
printf '[review]\nlisten = "127.0.0.1:%s"\ntoken_file = "%s"\nfeedback_dir = "%s"\n' "$REVIEW_PORT" "$TOKENS" "$RUN/feedback" >"$CONF"
TOKEN=$("$IMPOSTOR" review -c "$CONF" --init-token --name load 2>/dev/null | sed -n 's/^load://p')
"$IMPOSTOR" review -c "$CONF" --postfix-config "$PF_CONF" </dev/null >>"$RUN/review.log" 2>&1 &
echo $! >"$RUN/review.pid"
wait_socket "inet:127.0.0.1:$REVIEW_PORT" "$(cat "$RUN/review.pid")" || die "impostor review did not start"
URL=http://127.0.0.1:$REVIEW_PORT
# timed NAME PATH: prints "NAME  HTTP  seconds  bytes"
timed() {
  local r
  r=$(curl -s -o "$RUN/page.html" -w '%{http_code} %{time_total} %{size_download}' -H "Authorization: Bearer $TOKEN" "$URL$2")
  printf '%-40s %s\n' "$1" "$r"
}
pt=$(date +%s.%N); postqueue -c "$PF_CONF" -j >/dev/null; pe=$(date +%s.%N)
say "postqueue -j alone: $(awk -v a="$pt" -v b="$pe" 'BEGIN{printf "%.3f", b-a}') s"
echo "# page                                     http seconds bytes"
timed "list page 1 (first; waits for the start-up read)" "/"
grep -oE '[0-9]+ of [0-9]+ held message\(s\)' "$RUN/page.html" | head -1
grep -o 'review: hold queue read.*' "$RUN/review.log" | head -1
timed "list page 1 (warm)" "/"
timed "list page 1 (warm, again)" "/"
timed "filtered: domain=recruit-team.example" "/?domain=recruit-team.example"
grep -oE '[0-9]+ of [0-9]+ held message\(s\)' "$RUN/page.html" | head -1
timed "filtered: rule + brand, sort=score" "/?rule=LOOKALIKE_FROM_DOMAIN&brand=OpenAI&sort=score"
timed "page 150, sort=oldest" "/?sort=oldest&page=150"
ID=$(grep -oE 'data-queue-id="[0-9A-Za-z]+"' "$RUN/page.html" | head -1 | cut -d'"' -f2)
timed "message view $ID" "/message/$ID"
timed "message view $ID (again)" "/message/$ID"
stop_review
# the CLI beside it, same batched reads: impostor quarantine list
qt=$(date +%s.%N); nl=$("$IMPOSTOR" quarantine --postfix-config "$PF_CONF" list --json | wc -l); qe=$(date +%s.%N)
printf '%-40s %s lines %s s\n' "impostor quarantine list --json" "$nl" "$(awk -v a="$qt" -v b="$qe" 'BEGIN{printf "%.3f", b-a}')"
