#!/usr/bin/env bash
# tests/e2e/postfix-auth.sh: authentication end to end through a real Postfix.
#
#   dnsmasq on loopback serves SPF, DKIM and DMARC for brand.example (a protected brand in this
#   test's config) and for brand-support.example (a lookalike with its own valid records);
#   messages are DKIM-signed here by dkimpy's dkimsign (an independent signer);
#   swaks -> Postfix -> impostor (checks over that DNS) -> smtp-sink.
#
# Checks: a properly signed brand message passes untouched apart from our Authentication-Results;
# an unsigned spoof of the brand domain from a foreign client is rejected (or quarantined when the
# config says so); the lookalike that passes its own DMARC is still flagged; an incoming forged
# Authentication-Results with our authserv-id is removed. Ends with "N passed, M failed".
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
install_deps || exit 2
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (run cargo build, or set IMPOSTOR=...)"
command -v dkimsign >/dev/null || die "dkimsign missing (Debian package python3-dkim)"
e2e_init

BRAND_IP=203.0.113.7      # the XCLIENT address Postfix reports for the brand's own server
STRANGER_IP=198.51.100.99 # anyone else
KEY=$RUN/dkim.key
openssl genrsa -out "$KEY" 2048 2>/dev/null || die "openssl genrsa"
PUB=$(openssl rsa -in "$KEY" -pubout -outform DER 2>/dev/null | base64 -w0)
# dnsmasq: a TXT string is at most 255 bytes, so the DKIM key goes in several strings
DKIM_TXT="v=DKIM1; k=rsa; p=$PUB"
DKIM_ARG=$(printf '%s' "$DKIM_TXT" | fold -w 250 | paste -sd, -)
start_sink || die "smtp-sink did not start"
start_dns \
  "--txt-record=brand.example,v=spf1 ip4:$BRAND_IP -all" \
  "--txt-record=_dmarc.brand.example,v=DMARC1; p=reject" \
  "--txt-record=s1._domainkey.brand.example,$DKIM_ARG" \
  "--txt-record=brand-support.example,v=spf1 ip4:$STRANGER_IP -all" \
  "--txt-record=_dmarc.brand-support.example,v=DMARC1; p=none" \
  "--txt-record=s1._domainkey.brand-support.example,$DKIM_ARG" || die "dnsmasq did not start"

BRAND='builtin_brands = false
[[brand]]
name = "ExampleBrand"
domains = ["brand.example"]
[auth]
authserv_id = "mx.e2e.test"'
CONF=$RUN/impostor-auth.toml
write_conf "$CONF" "$BRAND"
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not start"
MILTERS="inet:127.0.0.1:$IMPOSTOR_PORT" start_postfix || die "Postfix did not start"

msg() { # msg FROM SUBJECT BODY [EXTRA HEADER LINE]
  printf '%sFrom: %s\r\nTo: bob@rcpt.example\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@e2e.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n%s\r\n' \
    "${4:+$4$'\r\n'}" "$1" "$2" "$(date -R)" "$RANDOM$RANDOM" "$3"
}
sign() { dkimsign --hcanon relaxed --bcanon relaxed s1 "$1" "$KEY"; }

# 1. the brand's own, signed, from its SPF-listed address, with a forged A-R in our name
msg '"ExampleBrand" <news@brand.example>' "Your ExampleBrand invoice" "Thank you." \
  "Authentication-Results: mx.e2e.test; dkim=pass header.d=evil.example" | sign brand.example >"$RUN/signed.eml"
XCLIENT_ADDR=$BRAND_IP send_eml brand-signed "$RUN/signed.eml" --from bounce@brand.example
if wait_sink brand-signed 20; then
  f=$(sink_file brand-signed)
  pass "brand-signed: delivered"
  check "brand-signed: X-Impostor-Verdict: accept" "$(header_values "$f" X-Impostor-Verdict)" [ "$(header_values "$f" X-Impostor-Verdict)" = accept ]
  ar=$(header_values "$f" Authentication-Results | tr -d '\t' | tr '\n' ' ')
  check "brand-signed: our A-R says dkim=pass, spf=pass, dmarc=pass" "$ar" \
    eval 'grep -q "dkim=pass header.d=brand.example" <<<"$ar" && grep -q "spf=pass" <<<"$ar" && grep -q "dmarc=pass (p=reject) header.from=brand.example" <<<"$ar"'
  check "brand-signed: the forged A-R in our name is gone" "$ar" eval '! grep -q "header.d=evil.example" <<<"$ar"'
  check "brand-signed: Subject untouched" "$(header_values "$f" Subject)" [ "$(header_values "$f" Subject)" = "Your ExampleBrand invoice" ]
else
  fail "brand-signed: delivered" "$(swaks_reply)"
fi

# 2. an unsigned spoof of the brand domain from a stranger: rejected (BRAND_DOMAIN_DMARC_FAIL + DMARC_FAIL + SPF_FAIL)
msg '"ExampleBrand Security" <security@brand.example>' "Quarterly newsletter" "Please see the notes below." >"$RUN/spoof.eml"
XCLIENT_ADDR=$STRANGER_IP send_eml brand-spoof "$RUN/spoof.eml" --from security@brand.example
check "brand-spoof: client gets 550 5.7.1" "$(swaks_reply)" grep -qE '^<\*\* +550 5\.7\.1' "$SWAKS_OUT"

# 3. the same spoof with a config that stops at quarantine: held, with the reason rules
stop_impostor
write_conf "$CONF" "$BRAND" '[rules]' 'disabled = ["SPF_FAIL"]'
start_impostor -c "$CONF" --socket "inet:127.0.0.1:$IMPOSTOR_PORT" || die "impostor did not restart"
XCLIENT_ADDR=$STRANGER_IP send_eml brand-spoof-q "$RUN/spoof.eml" --from security@brand.example
for ((i = 0; i < 100; i++)); do [ -n "$QID" ] && in_queue "$QID" hold && break; sleep 0.1; done
check "brand-spoof-q: held ($QID in the hold queue)" "$(queue_json)" in_queue "$QID" hold
held=$(postcat -c "$PF_CONF" -hq "$QID" 2>/dev/null | grep -E '^X-Impostor-Rules:')
check "brand-spoof-q: held copy names BRAND_DOMAIN_DMARC_FAIL" "$held" grep -q BRAND_DOMAIN_DMARC_FAIL <<<"$held"

# 4. a lookalike that authenticates as itself: its pass does not help it
msg '"ExampleBrand Support" <help@brand-support.example>' "Hello" "See you at the meetup." \
  | sign brand-support.example >"$RUN/lookalike.eml"
XCLIENT_ADDR=$STRANGER_IP send_eml lookalike "$RUN/lookalike.eml" --from help@brand-support.example
for ((i = 0; i < 100; i++)); do [ -n "$QID" ] && in_queue "$QID" hold && break; sleep 0.1; done
held=$(postcat -c "$PF_CONF" -hq "$QID" 2>/dev/null | grep -E '^(X-Impostor-Rules|Authentication-Results):|dmarc=' | tr '\n' ' ')
check "lookalike: held although its own DMARC passes" "$held" eval 'in_queue "$QID" hold && grep -q "dmarc=pass" <<<"$held"'
check "lookalike: BRAND_CLAIM_UNAUTHENTICATED and LOOKALIKE_FROM_DOMAIN" "$held" \
  eval 'grep -q BRAND_CLAIM_UNAUTHENTICATED <<<"$held" && grep -q LOOKALIKE_FROM_DOMAIN <<<"$held"'

postsuper -c "$PF_CONF" -d ALL hold >/dev/null 2>&1
summary
