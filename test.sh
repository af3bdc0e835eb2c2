#!/usr/bin/env bash
# The test command. It runs every step below whatever an earlier one did, prints a summary
# (step, result, time), and exits non-zero if any step failed:
#
#   core          go vet and go test -race ./... in the root module (every driver; the
#                 tests start their own redis-server and PostgreSQL on free loopback ports)
#   bench         the bench module's vet and tests (its benchmarks run only when asked:
#                 see docs/benchmarks.md)
#   promcache     the Prometheus adapter, a module of its own
#   otelcache     the OpenTelemetry adapter, a module of its own
#   fuzz:<name>   each fuzz target of the key space and of the inputs, for a fixed budget
#                 (docs/keys.md has the command for a long run)
#
# The nested modules require the core at its release version; go.work (at the root)
# makes them build against this copy of the core instead, so GOWORK names it explicitly:
# see docs/releasing.md.
#
# TEST_SH_FUZZTIME sets each fuzz target's budget (default 50000x: fifty thousand
# inputs). A count rather than a duration: with a duration, Go 1.26's fuzzing coordinator
# can report "context deadline exceeded" at the end of the budget when a busy machine
# starves its workers (golang/go#75804, fixed in Go 1.27), a failure with no failing
# input; a count has no deadline to race. Arguments, if any, are
# passed to the core's go test (e.g. ./test.sh -run Lock).
#
# The core's test binaries get -timeout 30m instead of go test's 10 minutes: that limit
# is a hang detector for a whole package, and the Redis driver's package, with its
# Sentinel, Cluster and fault suites, takes about 7.5 minutes under -race beside four
# busy processes, and past 10 with two more suites beside it. A later -timeout in the
# arguments wins.
set -uo pipefail
cd "$(dirname "$0")"
export GOWORK="$PWD/go.work"
fuzztime="${TEST_SH_FUZZTIME:-50000x}"

names=()
results=()
times=()
failed=0

# step NAME DIR COMMAND...: runs COMMAND in DIR and records its result and duration.
step() {
  local name=$1 dir=$2
  shift 2
  local start=$SECONDS rc
  echo "=== $name: $*"
  (cd "$dir" && "$@")
  rc=$?
  names+=("$name")
  times+=($((SECONDS - start)))
  if [ "$rc" -eq 0 ]; then
    results+=("ok")
  else
    results+=("FAIL (exit $rc)")
    failed=1
  fi
}

step core . sh -c 'go vet ./... && go test -race -count=1 -timeout 30m "$@" ./...' sh "$@"
if [ -f bench/go.mod ]; then
  step bench bench sh -c 'go vet ./... && go test -count=1 -run . ./...'
fi
for m in observability/promcache observability/otelcache; do
  if [ -f "$m/go.mod" ]; then
    step "${m##*/}" "$m" sh -c 'go vet ./... && go test -count=1 ./...'
  fi
done
step fuzz:FuzzKeySpace . go test -run '^$' -fuzz '^FuzzKeySpace$' -fuzztime "$fuzztime" .
step fuzz:FuzzParseDuration . go test -run '^$' -fuzz '^FuzzParseDuration$' -fuzztime "$fuzztime" .
step fuzz:FuzzFileName . go test -run '^$' -fuzz '^FuzzFileName$' -fuzztime "$fuzztime" ./drivers/filecache

echo
printf '%-24s %-16s %s\n' step result seconds
for i in "${!names[@]}"; do
  printf '%-24s %-16s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
printf '%-24s %-16s %s\n' total "$([ "$failed" -eq 0 ] && echo ok || echo FAIL)" "$SECONDS"
exit "$failed"
