package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
BenchmarkGetHit/impl=otter-2         	 100	        30.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGetHit/impl=otter-2         	 100	        32.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGetHit/impl=golang-lru-2    	 100	        40.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGetHit/impl=cachekit-memory-2	 100	        90.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkLock/impl=cachekit-memory-2 	 100	      1000 ns/op	     576 B/op	      12 allocs/op
BenchmarkFilecacheGetHit-2           	 100	     12000 ns/op	     900 B/op	      20 allocs/op
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| GetHit | otter | 31.0 | 1.00× (fastest) | 0 | 0 |",
		"| GetHit | golang-lru | 40.0 | 1.29× | 0 | 0 |",
		"| GetHit | cachekit-memory | 90.0 | 2.90× | 16 | 1 |",
		"| Lock | cachekit-memory | 1000.0 | n/a | 576 | 12 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Filecache") {
		t.Errorf("output has a benchmark without impl=:\n%s", out.String())
	}
}

func TestRunEmpty(t *testing.T) {
	if err := run(strings.NewReader("PASS\n"), &strings.Builder{}); err == nil {
		t.Error("run(no benchmarks) = nil; want an error")
	}
}
