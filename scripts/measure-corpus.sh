#!/usr/bin/env bash
# Measures detection over phishing corpora and a ham corpus (issues 5 and 14):
#   phish: per brand and per folder, the share that reaches tag or above and the share held
#          (quarantine or reject); each folder's brands.json maps file name -> brand, when present;
#   ham:   shares tagged, quarantined and rejected (targets: <= 0.1% tagged, none held).
# Every message is scanned offline with the example brand profiles, exactly as the daemon
# would judge it without DNS (no URL is fetched, nothing leaves the machine).
#
# Usage: scripts/measure-corpus.sh PHISH_DIR [PHISH_DIR ...] HAM_DIR
# Env:   IMPOSTOR  path to the binary (default target/release/impostor)
#        CONFIG    configuration (default deploy/brands-example.toml)
#        HOLDOUT   comma-separated brands reported apart as the held-out set (leave-brands-out:
#                  weights and phrases chosen on the other brands, measured on these)
#        MISSED=1  list every phish that was not held, with its action, score and rules
#        PYTHON    python3 interpreter (default python3)
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 PHISH_DIR [PHISH_DIR ...] HAM_DIR" >&2
    exit 2
fi
for d in "$@"; do
    [ -d "$d" ] || { echo "$0: $d is not a directory" >&2; exit 2; }
done
HAM_DIR=${!#}
PHISH_DIRS=("${@:1:$#-1}")
IMPOSTOR=${IMPOSTOR:-target/release/impostor}
CONFIG=${CONFIG:-deploy/brands-example.toml}
PYTHON=${PYTHON:-python3}

if [ ! -x "$IMPOSTOR" ]; then
    echo "$0: $IMPOSTOR not found or not executable (cargo build --release, or set IMPOSTOR)" >&2
    exit 2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

i=0
for d in "${PHISH_DIRS[@]}"; do
    echo "# $IMPOSTOR scan --json -c $CONFIG $d"
    "$IMPOSTOR" scan --json -c "$CONFIG" "$d" > "$WORK/phish-$i.jsonl" 2> "$WORK/phish-$i.err"
    printf '%s\n' "$d" > "$WORK/phish-$i.dir"
    i=$((i + 1))
done
echo "# $IMPOSTOR scan --json -c $CONFIG $HAM_DIR"
"$IMPOSTOR" scan --json -c "$CONFIG" "$HAM_DIR" > "$WORK/ham.jsonl" 2> "$WORK/ham.err"

"$PYTHON" - "$WORK" <<'PY'
import collections, glob, json, os, sys

work = sys.argv[1]
FLAGGED = {"tag", "quarantine", "reject"}
HELD = {"quarantine", "reject"}
holdout = {b.strip() for b in os.environ.get("HOLDOUT", "").split(",") if b.strip()}
show_missed = os.environ.get("MISSED") == "1"

def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

def pct(n, d):
    return f"{100.0 * n / d:6.2f}%" if d else "   n/a"

class Tally:
    def __init__(self):
        self.n = self.flagged = self.held = 0
    def add(self, action):
        self.n += 1
        self.flagged += action in FLAGGED
        self.held += action in HELD
    def line(self, label):
        return f"  {label:22} {self.n:5}   tag+ {self.flagged:5} {pct(self.flagged, self.n)}   held {self.held:5} {pct(self.held, self.n)}"

overall, inset, outset = Tally(), Tally(), Tally()
missed = []
for jl in sorted(glob.glob(os.path.join(work, "phish-*.jsonl"))):
    d = open(jl[:-len(".jsonl")] + ".dir").read().strip()
    bp = os.path.join(d, "brands.json")
    brands = json.load(open(bp)) if os.path.exists(bp) else {}
    per, folder = collections.defaultdict(Tally), Tally()
    for r in rows(jl):
        name = os.path.basename(r["file"])
        brand = brands.get(name, "(unlabelled)")
        a = r["action"]
        per[brand].add(a); folder.add(a); overall.add(a)
        (outset if brand in holdout else inset).add(a)
        if a not in HELD:
            missed.append(f"{name} [{brand}] {a} {r['score']} {[x['id'] for x in r['rules']]}")
    print(f"\nphish {d}: per brand (messages, tagged or above, held = quarantine or reject)")
    for b in sorted(per, key=lambda b: (-per[b].n, b)):
        print(per[b].line(b + (" (held out)" if b in holdout else "")))
    print(folder.line("ALL " + os.path.basename(d.rstrip("/"))))
print("\nphish, every folder:")
print(overall.line("ALL") + "   (targets: tag+ >= 97%, held >= 80%)")
if holdout:
    print(inset.line("tuned-on brands"))
    print(outset.line("held-out brands") + f"   ({', '.join(sorted(holdout))})")
if show_missed and missed:
    print(f"  not held ({len(missed)}):")
    for m in missed:
        print(f"    {m}")

actions = collections.Counter()
hits = []
for r in rows(os.path.join(work, "ham.jsonl")):
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
