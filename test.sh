#!/usr/bin/env bash
# The test command: every package with the race detector, then the bench module's own
# tests (its benchmarks run only when asked: see docs/benchmarks.md), then the
# observability modules (Prometheus, OpenTelemetry), which are modules of their own so
# that the core does not depend on them. The nested modules require the core at its
# release version; go.work (at the root) makes them build against this copy of the core
# instead, so GOWORK names it explicitly: see docs/releasing.md.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK="$PWD/go.work"
go test -race -count=1 ./...
if [ -f bench/go.mod ]; then
  (cd bench && go vet ./... && go test -count=1 -run . ./...)
fi
for m in observability/promcache observability/otelcache; do
  if [ -f "$m/go.mod" ]; then
    (cd "$m" && go vet ./... && go test -count=1 ./...)
  fi
done
# The fuzz targets of the key space, for a fixed budget each (docs/keys.md has the
# command for a long run).
go test -run '^$' -fuzz '^FuzzKeySpace$' -fuzztime 10s .
go test -run '^$' -fuzz '^FuzzParseDuration$' -fuzztime 10s .
go test -run '^$' -fuzz '^FuzzFileName$' -fuzztime 10s ./drivers/filecache
