#!/usr/bin/env bash
# scripts/cargo-deny.sh: licence, ban and source policy of the dependency tree (deny.toml).
#
#   scripts/cargo-deny.sh                 installs cargo-deny if missing, then runs
#                                         cargo deny check licenses bans sources
#   scripts/cargo-deny.sh advisories      also the RustSec advisories (needs github.com; not here)
#
# Installing cargo-deny from source (cargo install cargo-deny --locked) took 414 s on this
# 2-core machine under load; the check itself takes ~3 s. Exit status: cargo-deny's (0 = clean;
# duplicate-version warnings do not fail it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
  t=$(date +%s)
  echo "cargo-deny.sh: installing cargo-deny (cargo install cargo-deny --locked)" >&2
  cargo install cargo-deny --locked
  echo "cargo-deny.sh: installed in $(($(date +%s) - t)) s" >&2
fi
checks=(licenses bans sources)
[ "${1:-}" = advisories ] && checks+=(advisories)
t=$(date +%s)
rc=0
cargo deny --color never check "${checks[@]}" || rc=$?
echo "cargo-deny.sh: cargo deny check ${checks[*]}: exit $rc ($(($(date +%s) - t)) s)"
exit "$rc"
