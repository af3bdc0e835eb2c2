package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
)

// plantForeign writes another program's data of every other Redis type under p and
// returns the keys.
func plantForeign(t *testing.T, rdb redis.UniversalClient, p string) []string {
	t.Helper()
	ctx := context.Background()
	keys := []string{p + ".hash", p + ".list", p + ".set", p + ".zset", p + ".stream"}
	for i, err := range []error{
		rdb.HSet(ctx, keys[0], "f", "v").Err(),
		rdb.RPush(ctx, keys[1], "v").Err(),
		rdb.SAdd(ctx, keys[2], "v").Err(),
		rdb.ZAdd(ctx, keys[3], redis.Z{Score: 1, Member: "v"}).Err(),
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys[4], Values: []any{"f", "v"}}).Err(),
	} {
		if err != nil {
			t.Fatalf("planting %s: %v", keys[i], err)
		}
	}
	return keys
}

func isWrongType(t *testing.T, what string, err error, key string) {
	t.Helper()
	if !errors.Is(err, rediscache.ErrWrongType) {
		t.Fatalf("%s: error %v; want one matching rediscache.ErrWrongType", what, err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Fatalf("%s: error %q does not name the key %q", what, err, key)
	}
}

// TestWrongType: a key that holds another Redis type is an error matching ErrWrongType
// for Get, Pull and GetMany (one key, a few, more than one MGET carries, on one node and
// on a Cluster), never a miss; a missing key stays a miss; the reads leave the data as
// it was, and a plain Set replaces it.
func TestWrongType(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		p := scope("wrongtype")
		cleanup(t, d, p)
		rdb := d.Client()
		foreign := plantForeign(t, rdb, p)
		str, missing := p+".str", p+".missing"
		if err := d.Set(ctx, driver.Entry{Key: str, Value: []byte(`"v"`)}); err != nil {
			t.Fatal(err)
		}
		for _, k := range foreign {
			_, found, err := d.Get(ctx, k)
			if found {
				t.Fatalf("Get(%s) found a value", k)
			}
			isWrongType(t, "Get("+k+")", err, k)
			_, _, err = d.Pull(ctx, k)
			isWrongType(t, "Pull("+k+")", err, k)
			for _, keys := range [][]string{{k}, {str, k, missing}, {missing, k}, {k, missing, str}} {
				_, _, err := d.GetMany(ctx, keys)
				isWrongType(t, fmt.Sprintf("GetMany(%q)", keys), err, k)
			}
		}
		// More keys than one MGET carries, the foreign one last.
		many := make([]string, 2500)
		for i := range many {
			many[i] = fmt.Sprintf("%s.m%d", p, i)
		}
		many[1000] = str
		_, found, err := d.GetMany(ctx, many)
		if err != nil || !found[1000] || found[0] || found[2499] {
			t.Fatalf("GetMany(2500 keys, one hit) = %v (hit at 1000: %v); want no error, one hit", err, found[1000])
		}
		many[2499] = foreign[0]
		_, _, err = d.GetMany(ctx, many)
		isWrongType(t, "GetMany(2500 keys, a hash last)", err, foreign[0])

		// A miss stays a miss.
		vals, found, err := d.GetMany(ctx, []string{str, missing})
		if err != nil || !found[0] || found[1] || string(vals[0].([]byte)) != `"v"` {
			t.Fatalf("GetMany(str, missing) = %q, %v, %v; want [\"v\" <nil>], [true false], nil", vals, found, err)
		}
		if _, found, err := d.GetMany(ctx, []string{missing}); err != nil || found[0] {
			t.Fatalf("GetMany(missing) = %v, %v; want a miss", found, err)
		}

		// The reads changed nothing; a plain Set replaces.
		for i, want := range []string{"hash", "list", "set", "zset", "stream"} {
			if typ := rdb.Type(ctx, foreign[i]).Val(); typ != want {
				t.Fatalf("TYPE %s = %q after the reads; want %q", foreign[i], typ, want)
			}
		}
		if err := d.Set(ctx, driver.Entry{Key: foreign[0], Value: []byte(`"mine"`)}); err != nil {
			t.Fatalf("Set over a hash: %v", err)
		}
		if v, found, err := d.Get(ctx, foreign[0]); err != nil || !found || string(v.([]byte)) != `"mine"` {
			t.Fatalf("Get after Set over a hash = %q, %v, %v", v, found, err)
		}
	})
}

// BenchmarkGetMany: the cost of the wrong-type check. An all-hit MGET is never checked;
// a call with misses costs one more round trip (TYPE of the missing keys, pipelined).
func BenchmarkGetMany(b *testing.B) {
	ctx := context.Background()
	d, _ := benchClient(b)
	p := scope("getmany")
	b.Cleanup(func() { _ = d.DeleteNamespace(context.Background(), p) })
	for _, n := range []int{2, 10, 100} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("%s.n%d.k%d", p, n, i)
			if err := d.Set(ctx, driver.Entry{Key: keys[i], Value: []byte(`"value"`)}); err != nil {
				b.Fatal(err)
			}
		}
		withMiss := append(keys[:n-1:n-1], p+".missing")
		for _, bc := range []struct {
			name string
			keys []string
		}{{"hit", keys}, {"one-miss", withMiss}} {
			b.Run(fmt.Sprintf("%s/%d", bc.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := d.GetMany(ctx, bc.keys); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
