#!/usr/bin/env bash
# tests/e2e/postfix-security.sh: the security fixes end to end through a real Postfix.
#
#   swaks (as a stranger, or as the trusted relay, via XCLIENT) -> Postfix -> impostor
#        (own SPF/DKIM/DMARC over a loopback dnsmasq) -> smtp-sink
#
# Checks:
#   1. forged upstream Authentication-Results: a header with the trusted upstream's authserv-id
#      written by the sender does not change the verdict (alone, from a stranger), is removed from
#      a stranger's mail, and is removed and ignored below the relay's own block;
#   2. Postfix with milter_protocol = 2 and 3 (which have no NO_DATA / NO_UNKNOWN options and no
#      macro lists; before, every message got 451): clean mail is accepted, quarantine is held
#      (an MTA that lacks the quarantine action gets quarantine.fallback: tests/milter.rs);
#   3. decoder and parser bombs (a PNG tiled with QR finder patterns, 13,000 and 100,000 nested <div>):
#      the next clean message is accepted within 2 s of the bomb's reply.
# Ends with "N passed, M failed".
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
MSGS=$E2E_DIR/msgs
install_deps || exit 2
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (run cargo build, or set IMPOSTOR=...)"
e2e_init

RELAY_IP=192.0.2.25         # the trusted upstream relay (auth.trusted_relays)
STRANGER_IP=198.51.100.99   # anyone else, connecting directly
start_sink || die "smtp-sink did not start"
start_dns \
  "--txt-record=brand.example,v=spf1 ip4:203.0.113.7 -all" \
  "--txt-record=_dmarc.brand.example,v=DMARC1; p=reject" || die "dnsmasq did not start"
CONF=$RUN/impostor-security.toml
write_conf "$CONF" 'builtin_brands = false
[[brand]]
name = "ExampleBrand"
domains = ["brand.example"]
[auth]
authserv_id = "mx.e2e.test"
trusted_authserv_ids = ["mx.trusted.example"]
trusted_relays = ["192.0.2.0/24"]'
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not start"
MILTERS="inet:127.0.0.1:$IMPOSTOR_PORT" start_postfix || die "Postfix did not start"

GENUINE_FAIL='Authentication-Results: mx.trusted.example; spf=fail smtp.mailfrom=brand.example; dkim=none; dmarc=fail header.from=brand.example'
GENUINE_PASS='Authentication-Results: mx.trusted.example; spf=pass smtp.mailfrom=brand.example; dkim=pass header.d=brand.example header.s=s1; dmarc=pass header.from=brand.example'
FORGED='Authentication-Results: mx.trusted.example; dkim=pass header.d=brand.example header.s=forged; dmarc=pass header.from=brand.example'
UPSTREAM_RECEIVED=$'Received: from sender.example (sender.example [203.0.113.50])\r\n\tby mx.trusted.example (Postfix) with ESMTP id 4dXk2B;\r\n\tWed, 2 Dec 2026 06:00:00 +0000'
msg() { # msg SUBJECT [HEADER LINES ...]: a message from the brand's domain, extra headers on top
  local subject=$1; shift
  { for h in "$@"; do printf '%s\r\n' "$h"; done
    printf 'From: "ExampleBrand Security" <security@brand.example>\r\nTo: bob@rcpt.example\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@e2e.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nPlease see the notes below.\r\n' \
      "$subject" "$(date -R)" "$RANDOM$RANDOM"; }
}

# 1a. the spoof alone, from a stranger: our own checks reject it
msg "Quarterly notes" >"$RUN/spoof.eml"
XCLIENT_ADDR=$STRANGER_IP send_eml spoof "$RUN/spoof.eml" --from security@brand.example
check "spoof from a stranger: 550 5.7.1" "$(swaks_reply)" grep -qE '^<\*\* +550 5\.7\.1' "$SWAKS_OUT"
# 1b. the same with a forged pass in the upstream's name on top: still rejected
msg "Quarterly notes" "$FORGED" >"$RUN/forged.eml"
XCLIENT_ADDR=$STRANGER_IP send_eml forged-alone "$RUN/forged.eml" --from security@brand.example
check "forged upstream pass from a stranger: still 550 5.7.1" "$(swaks_reply)" grep -qE '^<\*\* +550 5\.7\.1' "$SWAKS_OUT"
# 1c. from the relay: its genuine fail on top, its own Received, then the sender's forged pass: rejected
msg "Quarterly notes" "$GENUINE_FAIL" "$UPSTREAM_RECEIVED" "$FORGED" >"$RUN/below.eml"
XCLIENT_ADDR=$RELAY_IP send_eml forged-below "$RUN/below.eml" --from security@brand.example
check "forged pass below the relay's genuine fail: 550 5.7.1" "$(swaks_reply)" grep -qE '^<\*\* +550 5\.7\.1' "$SWAKS_OUT"
# 1d. from the relay: its genuine pass is used; the forged copy below is removed, the genuine one kept
msg "Quarterly notes" "$GENUINE_PASS" "$UPSTREAM_RECEIVED" "$FORGED" >"$RUN/relay-pass.eml"
XCLIENT_ADDR=$RELAY_IP send_eml relay-pass "$RUN/relay-pass.eml" --from security@brand.example
if wait_sink relay-pass 20; then
  f=$(sink_file relay-pass)
  ar=$(header_values "$f" Authentication-Results | tr '\n' '|')
  check "relay-pass: accepted on the relay's results" "$(header_values "$f" X-Impostor-Verdict)" [ "$(header_values "$f" X-Impostor-Verdict)" = accept ]
  check "relay-pass: the relay's own A-R is kept" "$ar" grep -q "header.s=s1" <<<"$ar"
  check "relay-pass: the forged A-R below it is removed" "$ar" eval '! grep -q "header.s=forged" <<<"$ar"'
else
  fail "relay-pass: delivered" "$(swaks_reply)"
fi
# 1e. the relay's pass on a stranger's mail is a forgery: removed, and our own checks reject it
msg "Quarterly notes" "$GENUINE_PASS" >"$RUN/stranger-pass.eml"
XCLIENT_ADDR=$STRANGER_IP send_eml stranger-pass "$RUN/stranger-pass.eml" --from security@brand.example
check "upstream pass on a stranger's mail: 550 5.7.1" "$(swaks_reply)" grep -qE '^<\*\* +550 5\.7\.1' "$SWAKS_OUT"

# 2. older milter protocols: no quarantine action offered
stop_impostor
write_conf "$CONF"
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not restart"
for proto in 2 3; do
  postconf -c "$PF_CONF" -e "milter_protocol = $proto"
  postfix -c "$PF_CONF" reload >/dev/null 2>&1
  sleep 1
  send_eml "v$proto-clean" "$MSGS/clean.eml"
  if wait_sink "v$proto-clean" 20; then
    f=$(sink_file "v$proto-clean")
    check "milter_protocol $proto: clean mail delivered with X-Impostor-Verdict: accept" "$(headers_of "$f")" \
      [ "$(header_values "$f" X-Impostor-Verdict)" = accept ]
  else
    fail "milter_protocol $proto: clean mail delivered" "$(swaks_reply)"
  fi
  # Postfix offers the quarantine action on every protocol version (Sendmail only from 4 on)
  send_eml "v$proto-quarantine" "$MSGS/quarantine.eml"
  for ((i = 0; i < 100; i++)); do [ -n "$QID" ] && in_queue "$QID" hold && break; sleep 0.1; done
  check "milter_protocol $proto: a quarantine verdict is held ($QID)" "$(swaks_reply)" in_queue "$QID" hold
done
postconf -c "$PF_CONF" -e "milter_protocol = 6"
postfix -c "$PF_CONF" reload >/dev/null 2>&1
sleep 1

# 3. bombs: the next clean message gets its verdict within 2 s of the bomb's reply
bomb() { # bomb ID FILE
  local id=$1 file=$2 t0 ms
  send_eml "$id" "$file"
  check "$id: answered (not 451: the analysis is bounded)" "$(swaks_reply)" eval '[ "$SWAKS_RC" -eq 0 ] || grep -qE "^<\*\* +5" "$SWAKS_OUT"'
  t0=$(date +%s%N)
  send_eml "$id-next" "$MSGS/clean.eml"
  ms=$((($(date +%s%N) - t0) / 1000000))
  check "$id: the next clean message is accepted within 2 s (${ms} ms)" "$(swaks_reply)" \
    eval '[ "$SWAKS_RC" -eq 0 ] && [ "$ms" -lt 2000 ]'
}
bomb qr-bomb "$MSGS/bomb-qr.eml"
# nested <div>: 13,000 (65 KB, analysed on the connection's thread) and 100,000 (500 KB, blocking pool)
for n in 13000 100000; do
  { printf 'From: Alice <alice@example.org>\r\nTo: bob@rcpt.example\r\nSubject: layout\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<html><body>'
    head -c $((n * 5)) < <(yes '<div>' | tr -d '\n'); printf 'x\r\n'; } >"$RUN/nested-$n.eml"
  bomb "nested-html-$n" "$RUN/nested-$n.eml"
done

summary
