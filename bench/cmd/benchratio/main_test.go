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
BenchmarkRedisLock/impl=floor-2      	 100	    100000 ns/op	     466 B/op	      13 allocs/op
BenchmarkRedisLock/impl=cachekit-2   	 100	    105000 ns/op	    1176 B/op	      27 allocs/op
BenchmarkRedisLock/impl=cachekit-2   	 100	    106000 ns/op	    1174 B/op	      27 allocs/op
BenchmarkRedisGetHit/impl=go-redis-2 	 100	     50000 ns/op	     240 B/op	       7 allocs/op
BenchmarkRedisGetHit/impl=cachekit-2 	 100	     60000 ns/op	     448 B/op	      11 allocs/op
BenchmarkRedisLockInterleaved-2      	 890	         0 ns/op	    110000 ns/cachekit	    100000 ns/floor	    33000 cpu-ns/cachekit	    30000 cpu-ns/floor	    5636 B/op	     136 allocs/op
BenchmarkRedisLockInterleaved-2      	 890	         0 ns/op	    104000 ns/cachekit	    100000 ns/floor	    5636 B/op	     136 allocs/op
BenchmarkRedisLockInterleaved-2      	 890	         0 ns/op	    120000 ns/cachekit	    100000 ns/floor	    5636 B/op	     136 allocs/op
BenchmarkFilecacheGetHit-2           	 100	     12000 ns/op	     900 B/op	      20 allocs/op
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| GetHit | otter | 31.0 ns | 1.00× (baseline) | 0 | 0 |",
		"| GetHit | golang-lru | 40.0 ns | 1.29× | 0 | 0 |",
		"| GetHit | cachekit-memory | 90.0 ns | 2.90× | 16 | 1 |",
		"| Lock | cachekit-memory | 1000.0 ns | n/a | 576 | 12 |",
		"| RedisLock | floor | 100.0 µs | 1.00× (baseline) | 466 | 13 |",
		"| RedisLock | cachekit | 105.5 µs | 1.05× | 1175 | 27 |",
		"| RedisGetHit | cachekit | 60.0 µs | 1.20× | 448 | 11 |",
		"| RedisLockInterleaved | floor | 100.0 µs | 1.00× (baseline) | - | - |",
		"| RedisLockInterleaved | cachekit | 110.0 µs | 1.10× (1.04–1.20) | - | - |",
		"| RedisLockInterleaved | cachekit | 33.0 µs | 1.10× (1.10–1.10) |",
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
