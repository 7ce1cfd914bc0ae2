#!/usr/bin/env bash
# Measures the lookalike matcher (issue 4):
#   1. dnstwist permutations of openai.com, chatgpt.com and examplebank.com (generator only,
#      no DNS) plus its TLD-swap and dictionary (combosquat) fuzzers: "% matched" per brand and
#      every miss;
#   2. false positives: the registrable domains of From/Reply-To addresses and http(s) link
#      hosts of every message under CORPUS_DIR: "ham domains matched: N of M (x%)";
#   3. real attacker domains (issue 15): the share of SCAM_DOMAINS (one domain a line, e.g.
#      shared/domains/openai-themed-scam.txt) matched as OpenAI, every miss, and how the
#      combosquats were found;
#   4. the "open air" names that must stay unmatched (openairinterface.org, openair-festival.de,
#      openairmuseum.de and a few more).
#
# Usage: scripts/measure-lookalike.sh CORPUS_DIR [SCAM_DOMAINS]
# Env:   IMPOSTOR  path to the binary (default target/release/impostor)
#        PYTHON    python3 interpreter (default python3)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -d "$1" ] || { [ $# -eq 2 ] && [ ! -f "$2" ]; }; then
    echo "usage: $0 CORPUS_DIR [SCAM_DOMAINS]" >&2
    exit 2
fi
CORPUS_DIR=$1
SCAM_DOMAINS=${2:-}
IMPOSTOR=${IMPOSTOR:-target/release/impostor}
PYTHON=${PYTHON:-python3}

if [ ! -x "$IMPOSTOR" ]; then
    echo "$0: $IMPOSTOR not found or not executable (cargo build --release, or set IMPOSTOR)" >&2
    exit 2
fi
if ! "$PYTHON" -c 'import dnstwist' 2>/dev/null; then
    echo "installing dnstwist (pip install dnstwist)" >&2
    "$PYTHON" -m pip install --quiet dnstwist
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The built-in OpenAI profile plus a made-up second brand.
cat > "$WORK/impostor.toml" <<'TOML'
[[brand]]
name = "ExampleBank"
domains = ["examplebank.com"]
TOML

printf '%s\n' net org co io ai app info xyz com.br co.uk de fr es it > "$WORK/tlds.txt"
printf '%s\n' support login secure account billing platform team verify update portal \
    help api chat online > "$WORK/dictionary.txt"

# 1. dnstwist permutations: "<brand>\t<fuzzer>\t<domain>".
"$PYTHON" - "$WORK" > "$WORK/perms.tsv" <<'PY'
import contextlib, io, sys, dnstwist
work = sys.argv[1]
targets = {"openai.com": "OpenAI", "chatgpt.com": "OpenAI", "examplebank.com": "ExampleBank"}
for domain, brand in targets.items():
    with contextlib.redirect_stdout(io.StringIO()):
        perms = dnstwist.run(domain=domain, format="list", tld=f"{work}/tlds.txt",
                             dictionary=f"{work}/dictionary.txt")
    for p in perms:
        if p["fuzzer"] != "*original":
            print(f"{brand}\t{p['fuzzer']}\t{p['domain']}")
PY

run_impostor() { # reads domains on stdin, writes one JSON object per line
    xargs -d '\n' -n 500 "$IMPOSTOR" lookalike --json -c "$WORK/impostor.toml" --
}

cut -f3 "$WORK/perms.tsv" | run_impostor > "$WORK/perms.jsonl"

"$PYTHON" - "$WORK/perms.tsv" "$WORK/perms.jsonl" <<'PY'
import json, sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")]
out = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
if len(rows) != len(out):
    sys.exit(f"impostor printed {len(out)} results for {len(rows)} domains")
total = collections.Counter(); hit = collections.Counter(); misses = []
for (brand, fuzzer, domain), r in zip(rows, out):
    total[brand] += 1
    if r.get("brand") == brand:
        hit[brand] += 1
    else:
        misses.append(f"  {brand}\t{fuzzer}\t{domain}\t-> {r.get('brand') or r.get('owned_by') or 'no match'}")
print("dnstwist permutations (no DNS), generated with: dnstwist --format list --tld TLDS --dictionary WORDS DOMAIN")
for brand in sorted(total):
    print(f"{brand}: {hit[brand]} of {total[brand]} matched ({100.0 * hit[brand] / total[brand]:.2f}%)")
n, h = sum(total.values()), sum(hit.values())
print(f"all brands: {h} of {n} matched ({100.0 * h / n:.2f}%)")
print(f"misses ({len(misses)}):")
print("\n".join(misses) if misses else "  none")
PY

# 2. Ham: registrable domains of From/Reply-To and link hosts.
"$PYTHON" - "$CORPUS_DIR" > "$WORK/ham.txt" <<'PY'
import email, email.policy, os, re, sys
from email.utils import getaddresses
URL = re.compile(rb"https?://([A-Za-z0-9\-._~%\x80-\xff]+)", re.I)
# Second-level labels under which registrations happen at the third level (co.uk, com.br, ...);
# python's stdlib has no Public Suffix List, this approximation is enough for a count.
SLDS = {"co", "com", "net", "org", "ac", "gov", "edu", "or", "ne", "go", "gob", "mil", "nic"}
def registrable(host):
    labels = [l for l in host.strip(".").lower().split(".") if l]
    if len(labels) < 2 or all(l.isdigit() for l in labels):
        return None
    n = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in SLDS else 2
    return ".".join(labels[-n:])
domains = set()
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        if not (name.endswith(".eml") or "." not in name or re.fullmatch(r"\d+\.[0-9a-f]+", name)):
            continue
        try:
            raw = open(os.path.join(root, name), "rb").read()
        except OSError:
            continue
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        hosts = []
        for header in ("From", "Reply-To"):
            for _, addr in getaddresses([str(v) for v in msg.get_all(header, [])]):
                if "@" in addr:
                    hosts.append(addr.rsplit("@", 1)[1].strip("<>. "))
        bodies = [p.get_payload(decode=True) or b"" for p in msg.walk()
                  if p.get_content_maintype() == "text"] or [raw]
        for body in bodies:
            for m in URL.finditer(body):
                h = m.group(1).split(b":")[0].split(b"@")[-1]
                try:
                    hosts.append(h.decode("utf-8"))
                except UnicodeDecodeError:
                    pass
        for h in hosts:
            d = registrable(h)
            if d and re.fullmatch(r"[^\s/\\\"'<>]+", d):
                domains.add(d)
print("\n".join(sorted(domains)))
PY

run_impostor < "$WORK/ham.txt" > "$WORK/ham.jsonl"

"$PYTHON" - "$WORK/ham.txt" "$WORK/ham.jsonl" <<'PY'
import json, sys
domains = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
out = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
if len(domains) != len(out):
    sys.exit(f"impostor printed {len(out)} results for {len(domains)} domains")
matched = [(d, r) for d, r in zip(domains, out) if r.get("brand")]
m = len(domains)
print(f"ham domains matched: {len(matched)} of {m} ({100.0 * len(matched) / max(m, 1):.3f}%)")
for d, r in matched:
    print(f"  {d}\t{r['brand']}\t{','.join(r.get('techniques', []))}\t{r.get('normalized', '')}")
PY

# 3. Real attacker domains.
if [ -n "$SCAM_DOMAINS" ]; then
    grep -v '^\s*\(#\|$\)' "$SCAM_DOMAINS" | tr -d '\r' > "$WORK/scam.txt"
    run_impostor < "$WORK/scam.txt" > "$WORK/scam.jsonl"
    "$PYTHON" - "$WORK/scam.txt" "$WORK/scam.jsonl" "$SCAM_DOMAINS" <<'PY'
import collections, json, re, sys
domains = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
out = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
if len(domains) != len(out):
    sys.exit(f"impostor printed {len(out)} results for {len(domains)} domains")
hit = [(d, r) for d, r in zip(domains, out) if r.get("brand") == "OpenAI"]
n = len(domains)
print(f"scam domains ({sys.argv[3]}) matched: {len(hit)} of {n} ({100.0 * len(hit) / max(n, 1):.2f}%)")
how = collections.Counter()
for _, r in hit:
    t = r.get("techniques") or ["?"]
    m = re.search(r"\((with [^)]*)\)", r.get("detail", ""))
    how[t[0] + (f" by segmentation, {m.group(1)}" if m and "|" in r.get("detail", "") else "")] += 1
for k, v in how.most_common():
    print(f"  {v:4d}  {k}")
misses = [d for d, r in zip(domains, out) if r.get("brand") != "OpenAI"]
print(f"misses ({len(misses)}):")
print("\n".join(f"  {d}" for d in misses) if misses else "  none")
PY
fi

# 4. Open air is not OpenAI.
printf '%s\n' openairinterface.org openair-festival.de openairmuseum.de openair.org openaire.eu \
    openaid.org gitlab.eurecom.fr > "$WORK/openair.txt"
run_impostor < "$WORK/openair.txt" > "$WORK/openair.jsonl"
"$PYTHON" - "$WORK/openair.txt" "$WORK/openair.jsonl" <<'PY'
import json, sys
domains = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
out = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
bad = [(d, r) for d, r in zip(domains, out) if r.get("brand")]
print(f"open-air names matched: {len(bad)} of {len(domains)} (must be 0)")
for d, r in bad:
    print(f"  {d}\t{r.get('detail', '')}")
PY
