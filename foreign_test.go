package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// foreign wraps the memory driver: keys matching bad hold data of another program that
// the driver cannot read (a Redis hash, say). The data is in the store from the start,
// but the first readsBefore reads of such a key still see nothing: the other program
// wrote it between two of the cache's reads. From then on, Get reports an error for it.
type foreign struct {
	*memorycache.Driver
	bad         func(key string) bool
	readsBefore int64
	reads       atomic.Int64
}

var errForeign = errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")

// foreignData is what the other program stored.
type foreignData struct{ Field string }

func newForeign(t testing.TB, readsBefore int64, bad func(string) bool, keys ...string) *foreign {
	t.Helper()
	f := &foreign{Driver: newMem(t), bad: bad, readsBefore: readsBefore}
	for _, k := range keys {
		if err := f.Driver.Set(context.Background(), driver.Entry{Key: k, Value: foreignData{"theirs"}}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *foreign) Get(ctx context.Context, key string) (any, bool, error) {
	if f.bad(key) {
		if f.reads.Add(1) <= f.readsBefore {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("get %q: %w", key, errForeign)
	}
	return f.Driver.Get(ctx, key)
}

// foreignBatch is foreign with a batch read that reports the error too.
type foreignBatch struct{ *foreign }

func (f foreignBatch) GetMany(ctx context.Context, keys []string) ([]any, []bool, error) {
	vals, found := make([]any, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		v, ok, err := f.Get(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		vals[i], found[i] = v, ok
	}
	return vals, found, nil
}

// untouched fails t unless every key still holds the other program's data.
func (f *foreign) untouched(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, found, err := f.Driver.Get(context.Background(), k)
		if _, ok := v.(foreignData); err != nil || !found || !ok {
			t.Errorf("%s holds %#v (found %v, err %v) after the call; want the other program's data, untouched", k, v, found, err)
		}
	}
}

// A key whose data the driver cannot read is never replaced by Remember, SWR or Once,
// whichever of their reads meets the error: the error reaches the caller and fn does
// not run.
func TestForeignDataIsNeverOverwritten(t *testing.T) {
	is := func(key string) func(string) bool { return func(k string) bool { return k == key } }
	isRecord := func(k string) bool { return strings.Contains(k, "none") }
	cases := []struct {
		name        string
		readsBefore int64
		bad         func(string) bool
		keys        []string // the keys holding the other program's data
		batch       bool
		notFound    bool // fn says the thing does not exist (to write the negative mark)
		call        func(ctx context.Context, c *cache.Cache, fn func(context.Context) (string, error)) error
	}{
		{"Remember/first read", 0, is("k"), []string{"k"}, false, false, remember(cache.RememberOptions{TTL: time.Minute})},
		{"Remember/read in the flight", 1, is("k"), []string{"k"}, false, false, remember(cache.RememberOptions{TTL: time.Minute})},
		{"Remember/Distributed, read under the lock", 2, is("k"), []string{"k"}, false, false, remember(cache.RememberOptions{TTL: time.Minute, Distributed: true})},
		{"Remember/negative mark, first read", 0, isRecord, nil, false, true, remember(cache.RememberOptions{TTL: time.Minute, NegativeTTL: time.Minute})},
		{"Remember/negative mark, read in the flight", 1, isRecord, nil, false, true, remember(cache.RememberOptions{TTL: time.Minute, NegativeTTL: time.Minute})},
		{"SWR/first read", 0, is("k"), []string{"k"}, false, false, swr},
		{"SWR/batch read", 0, is("k"), []string{"k"}, true, false, swr},
		{"SWR/read in the cold load", 1, is("k"), []string{"k"}, false, false, swr},
		{"Once", 0, is("k"), []string{"k"}, false, false, func(ctx context.Context, c *cache.Cache, fn func(context.Context) (string, error)) error {
			_, err := cache.Once(ctx, c, "k", time.Minute, fn)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForeign(t, tc.readsBefore, tc.bad, tc.keys...)
			var d cache.Driver = f
			if tc.batch {
				d = foreignBatch{f}
			}
			c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"f": d}})
			keys := tc.keys
			if keys == nil { // the negative mark: put the other program's data under its name
				probe, _ := newScannable(t, cache.Config{})
				mk := negativeMarkKey(t, probe, "k")
				if err := f.Driver.Set(context.Background(), driver.Entry{Key: mk, Value: foreignData{"theirs"}}); err != nil {
					t.Fatal(err)
				}
				keys = []string{mk}
			}
			var runs atomic.Int32
			err := tc.call(ctxT(t), c, func(context.Context) (string, error) {
				runs.Add(1)
				if tc.notFound {
					return "", fmt.Errorf("user k: %w", cache.ErrNotFound) // would write the negative mark
				}
				return "loaded", nil
			})
			if !errors.Is(err, errForeign) {
				t.Errorf("the call returned %v; want the driver's error", err)
			}
			if n := runs.Load(); n != 0 {
				t.Errorf("fn ran %d times; want 0", n)
			}
			f.untouched(t, keys...)
		})
	}
}

func remember(o cache.RememberOptions) func(context.Context, *cache.Cache, func(context.Context) (string, error)) error {
	return func(ctx context.Context, c *cache.Cache, fn func(context.Context) (string, error)) error {
		_, err := cache.RememberWith(ctx, c, "k", o, fn)
		return err
	}
}

func swr(ctx context.Context, c *cache.Cache, fn func(context.Context) (string, error)) error {
	_, err := cache.SWR(ctx, c, "k", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}, fn)
	return err
}

// negativeMarkKey returns the stored key of key's negative mark on c, by making one.
func negativeMarkKey(t *testing.T, c *cache.Cache, key string) string {
	t.Helper()
	d := scannerOf(t, c)
	before := storedKeys(t, d)
	_, err := cache.RememberWith(ctxT(t), c, key, cache.RememberOptions{NegativeTTL: time.Minute},
		func(context.Context) (int, error) { return 0, cache.ErrNotFound })
	if !errors.Is(err, cache.ErrNotFound) {
		t.Fatal(err)
	}
	for _, k := range storedKeys(t, d) {
		if !slices.Contains(before, k) {
			return k
		}
	}
	t.Fatal("no negative mark was written")
	return ""
}
