#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS]: coverage-guided fuzzing of impostor on stable Rust with afl.rs.
#
# Targets (fuzz/fuzz_targets/):
#   analyze  message parsing + analysis (impostor::analysis::analyze), seeds: tests/fixtures/golden/**/*.eml,
#            tests/e2e/msgs/*.eml (each prefixed with one flag byte: truncated / headers_truncated / engine)
#   config   config loading (Config::from_toml_str) + building an engine, seeds: deploy/*.toml
#   banner   the warning banner (impostor::banner::apply(raw, "OpenAI")), seeds: tests/fixtures/golden/**/*.eml
# SECONDS (default 1800) is the total, split 1/2 analyze, 1/4 config, 1/4 banner, run one after the other
# on one core (nice -n 10, bounded by timeout). FUZZ_TARGETS="analyze" picks targets (one target gets it all).
#
# Why afl.rs and not cargo-fuzz: cargo-fuzz/libFuzzer needs -Zsanitizer (nightly; RUSTC_BOOTSTRAP=1 would
# be needed to unlock it on stable, which is an unsupported hack). afl.rs instruments with stable rustc
# flags (-C passes=sancov-module ...) and builds AFL++ itself: `cargo install cargo-afl` is all it takes.
#
# Output: fuzz/artifacts/<target>/default/{queue,crashes,hangs,fuzzer_stats}. Re-running resumes
# (AFL_AUTORESUME). Every crash or hang is copied to tests/fixtures/fuzz-regressions/pending/<target>-<sha1>.bin:
# not replayed yet (it would fail the suite until the fix lands); minimise it (cargo afl tmin, see
# docs/reliability.md) and move it up into tests/fixtures/fuzz-regressions/, which tests/hostile.rs
# (fuzz_regressions) replays, with the fix. Exit status: 0 no crash, 1 crashes found, 2 could not run.
#
# scripts/fuzz.sh keep: after a run, refreshes the replayed corpus: each target's queue is minimised with
# `cargo afl cmin`, then at most KEEP_ANALYZE / KEEP_CONFIG / KEEP_BANNER (default 25 / 15 / 20) of the
# remaining files of at most 16 KiB are picked greedily, each the one adding the most edges not yet covered
# (afl-showmap), and copied to tests/fixtures/fuzz-regressions/<target>-<sha1>.bin (old ones of that target
# removed; pending/ untouched).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = keep ]; then
  FUZZ=$ROOT/fuzz
  REG=$ROOT/tests/fixtures/fuzz-regressions
  for t in ${FUZZ_TARGETS:-analyze config banner}; do
    case $t in analyze) n=${KEEP_ANALYZE:-25} ;; config) n=${KEEP_CONFIG:-15} ;; *) n=${KEEP_BANNER:-20} ;; esac
    q=$FUZZ/artifacts/$t/default/queue min=$FUZZ/corpus/$t-cmin maps=$FUZZ/corpus/$t-maps
    [ -d "$q" ] || { echo "fuzz keep: $t: no queue at $q" >&2; continue; }
    rm -rf "$min" "$maps"
    # AFL_MAP_SIZE: with the exact map size of a small target (banner: 14,018) afl-cmin records no tuples at all
    AFL_MAP_SIZE=65536 AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1 nice -n 10 cargo afl cmin -i "$q" -o "$min" -t 2000 -m none -- "$FUZZ/target/release/$t" >"$FUZZ/artifacts/$t.cmin.log" 2>&1 \
      || { echo "fuzz keep: $t: cmin failed, see $FUZZ/artifacts/$t.cmin.log" >&2; continue; }
    find "$min" -type f -size +16k -delete
    nice -n 10 cargo afl showmap -i "$min" -o "$maps" -t 2000 -m none -- "$FUZZ/target/release/$t" >/dev/null 2>&1
    rm -f "$REG/$t"-*.bin
    # greedy set cover: a map file per input, one "edge:count" a line
    for m in "$maps"/*; do [ -f "$m" ] && awk -v f="$(basename "$m")" -F: '{ print f, $1 }' "$m"; done \
      | awk -v n="$n" '{ fe[$1] = fe[$1] " " $2 }
          END {
            for (k = 0; k < n; k++) {
              best = ""; gain = 0
              for (f in fe) {
                c = split(fe[f], xs, " "); g = 0
                for (i = 1; i <= c; i++) if (!(xs[i] in got)) g++
                if (g > gain) { gain = g; best = f }
              }
              if (best == "") break
              c = split(fe[best], xs, " ")
              for (i = 1; i <= c; i++) got[xs[i]] = 1
              delete fe[best]; print best, gain
            }
          }' >"$FUZZ/corpus/$t-keep.txt"
    total=0
    while read -r f gain; do
      h=$(sha1sum "$min/$f" | cut -c1-16)
      cp "$min/$f" "$REG/$t-$h.bin"
      total=$((total + gain))
    done <"$FUZZ/corpus/$t-keep.txt"
    echo "fuzz keep: $t: $(ls "$q" | grep -c '^id:') queue -> $(ls "$min" | wc -l) after cmin (<= 16 KiB) -> $(wc -l <"$FUZZ/corpus/$t-keep.txt") kept, covering $total edges"
  done
  exit 0
fi
TOTAL=${1:-1800}
TARGETS=${FUZZ_TARGETS:-analyze config banner}
FUZZ=$ROOT/fuzz
REG=$ROOT/tests/fixtures/fuzz-regressions
mkdir -p "$REG/pending" "$FUZZ/corpus" "$FUZZ/artifacts"

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
    banner)
      while IFS= read -r f; do
        n=$((n + 1))
        cp "$f" "$2/$n-$(basename "$f")"
      done < <(find "$ROOT/tests/fixtures/golden" -name '*.eml' | sort) ;;
  esac
}

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1 AFL_NO_AFFINITY=1
export AFL_SKIP_CRASHES=1
rc=0
weight() { case $1 in analyze) echo 2 ;; *) echo 1 ;; esac; } # analyze gets twice the time of each other target
sum=0
for t in $TARGETS; do sum=$((sum + $(weight "$t"))); done
for t in $TARGETS; do
  secs=$((TOTAL * $(weight "$t") / sum))
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
    cp -n "$c" "$REG/pending/$t-$h.bin"
    echo "fuzz: $t finding -> tests/fixtures/fuzz-regressions/pending/$t-$h.bin ($(basename "$(dirname "$c")"))"
    rc=1
  done
done
exit $rc
