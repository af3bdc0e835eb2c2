#!/usr/bin/env bash
# The test command: every package with the race detector, then the bench module's own
# tests (its benchmarks run only when asked: see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 ./...
if [ -f bench/go.mod ]; then
  (cd bench && go vet ./... && go test -count=1 -run . ./...)
fi
