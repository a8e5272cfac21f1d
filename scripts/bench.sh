#!/usr/bin/env bash
# make bench: the benchmarks behind docs/BENCHMARKS.md, on the local stack.
#
#   1. the micro-benchmarks of the libraries (pkg/envelope, pkg/apikey,
#      pkg/jwks): go test -run '^$' -bench . -benchmem, one package at a time,
#      and JWT sign/verify (functions/jwtrotate/jwtstrategy);
#   2. cmd/rotbench: starts moto and a throwaway PostgreSQL cluster itself,
#      builds the functions, measures rotations, cold start, peak memory,
#      binary size and the 1,000-secret scale run, stops everything, and
#      writes the tables (with the micro-benchmark output and the machine)
#      into docs/BENCHMARKS.md between its markers.
#
# Exits non-zero if any measurement could not be taken. A goal that was
# measured and missed is reported in the document, not as a failure.
# Extra arguments go to rotbench (e.g. --scale 100 --rotations 5 for a quick
# look; the document then says so). BENCHTIME overrides -benchtime for the
# micro-benchmarks (go test's default: 1s per benchmark).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
GO=${GO:-go}

work=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== make bench on $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"

echo "== building cmd/rotbench"
if ! "$GO" build -o "$work/rotbench" ./cmd/rotbench; then
	echo "bench: cmd/rotbench does not build" >&2
	exit 1
fi

echo "== micro-benchmarks: pkg/envelope pkg/apikey pkg/jwks"
benchargs=(-run '^$' -bench . -benchmem -count 1 -p 1)
if [ -n "${BENCHTIME:-}" ]; then
	benchargs+=(-benchtime "$BENCHTIME")
fi
"$GO" test "${benchargs[@]}" ./pkg/envelope ./pkg/apikey ./pkg/jwks 2>&1 | tee "$work/micro.txt"
micro_rc=${PIPESTATUS[0]}
# JWT signing and verification through pkg/jwks live with the key generation
# benchmarks in functions/jwtrotate/jwtstrategy (RSA key generation is left out:
# seconds per key, see docs/bench/jwt.md).
echo "== JWT sign/verify (functions/jwtrotate/jwtstrategy)"
"$GO" test "${benchargs[@]}" -bench '^Benchmark(Sign|Verify)$' ./functions/jwtrotate/jwtstrategy 2>&1 | tee -a "$work/micro.txt"
jwt_rc=${PIPESTATUS[0]}
if [ "$micro_rc" -eq 0 ]; then
	micro_rc=$jwt_rc
fi
if [ "$micro_rc" -ne 0 ]; then
	echo "bench: the micro-benchmarks failed (exit $micro_rc)" >&2
fi

echo "== rotbench (local stack: moto, PostgreSQL, the functions' bootstraps)"
"$work/rotbench" -out docs/BENCHMARKS.md -micro "$work/micro.txt" -micro-exit "$micro_rc" -micro-benchtime "${BENCHTIME:-}" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
	echo "bench: FAILED — some measurement could not be taken (see above and docs/BENCHMARKS.md)" >&2
	exit "$rc"
fi
echo "bench: done; results in docs/BENCHMARKS.md"
