#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS]: coverage-guided fuzzing of impostor on stable Rust with afl.rs.
#
# Targets (fuzz/fuzz_targets/):
#   analyze  message parsing + analysis (impostor::analysis::analyze), seeds: tests/fixtures/golden/**/*.eml,
#            tests/e2e/msgs/*.eml (each prefixed with one flag byte: truncated / headers_truncated / engine)
#   config   config loading (Config::from_toml_str) + building an engine, seeds: deploy/*.toml
# SECONDS (default 1800) is the total, split 2/3 analyze, 1/3 config, run one after the other on one
# core (nice -n 10, bounded by timeout). FUZZ_TARGETS="analyze" picks targets.
#
# Why afl.rs and not cargo-fuzz: cargo-fuzz/libFuzzer needs -Zsanitizer (nightly; RUSTC_BOOTSTRAP=1 would
# be needed to unlock it on stable, which is an unsupported hack). afl.rs instruments with stable rustc
# flags (-C passes=sancov-module ...) and builds AFL++ itself: `cargo install cargo-afl` is all it takes.
#
# Output: fuzz/artifacts/<target>/default/{queue,crashes,hangs,fuzzer_stats}. Re-running resumes
# (AFL_AUTORESUME). Every crash is copied to tests/fixtures/fuzz-regressions/<target>-<sha1>.bin, which
# tests/hostile.rs replays. Exit status: 0 no crash, 1 crashes found, 2 could not run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOTAL=${1:-1800}
TARGETS=${FUZZ_TARGETS:-analyze config}
FUZZ=$ROOT/fuzz
REG=$ROOT/tests/fixtures/fuzz-regressions
mkdir -p "$REG" "$FUZZ/corpus" "$FUZZ/artifacts"

command -v cargo-afl >/dev/null 2>&1 || cargo install --locked cargo-afl || { echo "fuzz: cannot install cargo-afl" >&2; exit 2; }
# AFL++ itself is built by cargo-afl on install; (re)build it when missing for this rustc
cargo afl config --build >/dev/null 2>&1 || true
(cd "$FUZZ" && nice -n 10 cargo afl build --release) || { echo "fuzz: cargo afl build failed" >&2; exit 2; }

seeds() { # seeds TARGET DIR
  rm -rf "$2"; mkdir -p "$2"
  local f n=0
  case $1 in
    analyze)
      while IFS= read -r f; do
        n=$((n + 1))
        { printf '\0'; cat "$f"; } >"$2/$n-$(basename "$f")"
      done < <(find "$ROOT/tests/fixtures/golden" "$ROOT/tests/e2e/msgs" -name '*.eml' | sort)
      # one truncated + other-engine variant, so the flag byte is exercised from the start
      { printf '\7'; cat "$ROOT/tests/e2e/msgs/reject.eml"; } >"$2/flags-reject.eml" ;;
    config)
      for f in "$ROOT"/deploy/*.toml; do cp "$f" "$2/"; done
      printf '' >"$2/empty.toml"
      printf '[milter]\nmax_connections = 5\nconnection_timeout = 2\n[dns]\non_error = "continue"\n' >"$2/small.toml" ;;
  esac
}

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1 AFL_NO_AFFINITY=1
export AFL_SKIP_CRASHES=1
rc=0
set -- $TARGETS
for t in "$@"; do
  case $t in analyze) secs=$((TOTAL * 2 / 3)) ;; *) secs=$((TOTAL / 3)) ;; esac
  [ $# -eq 1 ] && secs=$TOTAL
  seeds "$t" "$FUZZ/corpus/$t-seeds"
  out=$FUZZ/artifacts/$t
  echo "fuzz: $t for $secs s -> $out ($(date +%T))"
  # -V: stop after SECONDS; timeout: a hard bound on top; -t 2000: 2 s per input counts as a hang
  timeout --kill-after=30 $((secs + 60)) nice -n 10 cargo afl fuzz -V "$secs" -t 2000 -m none \
    -i "$FUZZ/corpus/$t-seeds" -o "$out" "$FUZZ/target/release/$t" >"$FUZZ/artifacts/$t.log" 2>&1
  st=$out/default/fuzzer_stats
  if [ -f "$st" ]; then
    awk -F' *: *' -v t="$t" '/^(run_time|execs_done|execs_per_sec|corpus_count|bitmap_cvg|edges_found|total_edges|saved_crashes|saved_hangs|stability)/ { printf "fuzz: %s %s = %s\n", t, $1, $2 }' "$st"
  else
    echo "fuzz: $t: no fuzzer_stats; last lines of $FUZZ/artifacts/$t.log:"; tail -20 "$FUZZ/artifacts/$t.log"; rc=2
  fi
  for c in "$out"/default/crashes/id:* "$out"/default/hangs/id:*; do
    [ -f "$c" ] || continue
    h=$(sha1sum "$c" | cut -c1-16)
    cp -n "$c" "$REG/$t-$h.bin"
    echo "fuzz: $t finding -> tests/fixtures/fuzz-regressions/$t-$h.bin ($(basename "$(dirname "$c")"))"
    rc=1
  done
done
exit $rc
