#!/usr/bin/env bash
# Measures detection over a phishing corpus and a ham corpus (issue 5):
#   phish: share of messages that reach tag or above, per brand (PHISH_DIR/brands.json maps
#          file name -> brand, when present) and overall;
#   ham:   shares tagged, quarantined and rejected (targets: <= 0.1% tagged, none quarantined).
# Every message is scanned offline with the example brand profiles, exactly as the daemon
# would judge it without DNS (no URL is fetched, nothing leaves the machine).
#
# Usage: scripts/measure-corpus.sh PHISH_DIR HAM_DIR
# Env:   IMPOSTOR  path to the binary (default target/release/impostor)
#        CONFIG    configuration (default deploy/brands-example.toml)
#        PYTHON    python3 interpreter (default python3)
set -euo pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ] || [ ! -d "$2" ]; then
    echo "usage: $0 PHISH_DIR HAM_DIR" >&2
    exit 2
fi
PHISH_DIR=$1
HAM_DIR=$2
IMPOSTOR=${IMPOSTOR:-target/release/impostor}
CONFIG=${CONFIG:-deploy/brands-example.toml}
PYTHON=${PYTHON:-python3}

if [ ! -x "$IMPOSTOR" ]; then
    echo "$0: $IMPOSTOR not found or not executable (cargo build --release, or set IMPOSTOR)" >&2
    exit 2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "# $IMPOSTOR scan --json -c $CONFIG $PHISH_DIR"
"$IMPOSTOR" scan --json -c "$CONFIG" "$PHISH_DIR" > "$WORK/phish.jsonl" 2> "$WORK/phish.err"
echo "# $IMPOSTOR scan --json -c $CONFIG $HAM_DIR"
"$IMPOSTOR" scan --json -c "$CONFIG" "$HAM_DIR" > "$WORK/ham.jsonl" 2> "$WORK/ham.err"

"$PYTHON" - "$WORK/phish.jsonl" "$WORK/ham.jsonl" "$PHISH_DIR/brands.json" <<'PY'
import collections, json, os, sys

phish, ham, brands_path = sys.argv[1:4]
brands = json.load(open(brands_path)) if os.path.exists(brands_path) else {}
FLAGGED = {"tag", "quarantine", "reject"}

def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

def pct(n, d):
    return f"{100.0 * n / d:.2f}%" if d else "n/a"

total, flagged = collections.Counter(), collections.Counter()
missed = []
for r in rows(phish):
    name = os.path.basename(r["file"])
    brand = brands.get(name, "(unlabelled)")
    total[brand] += 1
    if r["action"] in FLAGGED:
        flagged[brand] += 1
    else:
        missed.append(f"{name} [{brand}] {r['action']} {r['score']}")
print("\nphish: tagged or above, per brand")
for b in sorted(total, key=lambda b: (-total[b], b)):
    print(f"  {b:16} {flagged[b]:5} of {total[b]:5}  {pct(flagged[b], total[b])}")
n, f = sum(total.values()), sum(flagged.values())
print(f"  {'ALL':16} {f:5} of {n:5}  {pct(f, n)}   (target >= 95%)")
if missed:
    print(f"  missed ({len(missed)}):")
    for m in missed:
        print(f"    {m}")

actions = collections.Counter()
hits = []
for r in rows(ham):
    actions[r["action"]] += 1
    if r["action"] in FLAGGED:
        hits.append(f"{r['file']} {r['action']} {r['score']} {[x['id'] for x in r['rules']]}")
n = sum(actions.values())
print(f"\nham: {n} messages")
for a in ("tag", "quarantine", "reject", "tempfail"):
    print(f"  {a:11} {actions[a]:5}  {pct(actions[a], n)}")
print(f"  tagged or above: {pct(sum(actions[a] for a in FLAGGED), n)}   (targets: <= 0.1% tagged, 0 quarantined or rejected)")
for h in hits:
    print(f"    {h}")
PY
