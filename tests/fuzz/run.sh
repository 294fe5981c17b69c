#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET...]: builds the libFuzzer targets (clang, build-fuzz/) and
# runs each for SECONDS (default 15) from the committed seed corpus (tests/fuzz/corpus/<target>,
# read only; new inputs go to build-fuzz/fuzz-corpus/<target>). A crash leaves its input in
# build-fuzz/fuzz-crashes/<target>/: fix the bug, then commit the input under
# tests/fuzz/regressions/<target>/ (fuzz_replay_test replays it in every build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-15}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(frame payload payload_boost pool_frames queue_item spawn_frames contract)
dir="$root/build-fuzz"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug \
    -DCOHORT_FUZZ=ON -DCOHORT_BUILD_BENCH=OFF -DCOHORT_BUILD_EXAMPLES=OFF >&2
fi
cmake --build "$dir" -j "$(nproc)" --target fuzz_all >&2
# Huge allocations return null (the decoders then throw std::bad_alloc, a DeserializeError in the
# runtime) instead of aborting; libFuzzer still reports any single allocation over -malloc_limit_mb.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  mkdir -p "$dir/fuzz-corpus/$t" "$dir/fuzz-crashes/$t"
  echo "== fuzz $t for ${seconds}s"
  if ! "$dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$dir/fuzz-crashes/$t/" \
      "$dir/fuzz-corpus/$t" "$root/tests/fuzz/corpus/$t" 2>"$dir/fuzz-$t.log"; then
    status=1
    echo "== FUZZ FAILURE in $t (log: $dir/fuzz-$t.log, input in $dir/fuzz-crashes/$t/)"
    grep -E "ERROR|SUMMARY|fuzz check failed|==[0-9]+==" "$dir/fuzz-$t.log" | head -5
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$dir/fuzz-$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
