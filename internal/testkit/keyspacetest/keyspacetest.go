// Package keyspacetest is the key-space property of the key rules (docs/keys.md),
// written once for every driver: the root package's FuzzKeySpace and TestKeySpace run it
// on the memory and file drivers, drivers/rediscache's TestKeySpace on a Redis. For two
// (prefix, namespace, key) triples, with static prefixes and with a PrefixFunc: each
// call either is refused by the rules or stores its value and records where the rules
// say; two caches with different prefixes never share a key; Flush and RemoveNamespace
// through one cache remove only what lies under their scope, and never a key of another
// prefix.
//
// The package may import testing: only test binaries use it.
package keyspacetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

// Triple is one cache's prefix, namespace and key.
type Triple struct{ Prefix, NS, Key string }

// Cases are adversarial pairs of triples; the root package's testdata/fuzz/FuzzKeySpace
// holds them too.
var Cases = [][2]Triple{
	{{"acme", "", "secret"}, {"acme.eu", "", "secret"}},
	{{"acme", "", "eu.secret"}, {"acme.eu", "", "secret"}},
	{{"example.com", "", "k"}, {"example.com.au", "", "k"}},
	{{"", "", "acme.secret"}, {"acme", "", "secret"}},
	{{"acme", "eu", "secret"}, {"acme", "", "eu.secret"}},
	{{"app", "users", "1"}, {"app", "users.1", "x"}},
	{{"app", "", "status:none"}, {"app", "", "status"}},
	{{"app", "", "k.|none"}, {"app", "", "k"}},
	{{"app", "|", "k"}, {"app", "", "|"}},
	{{"a|b", "", "k"}, {"a", "", "k"}},
	{{"", "", ""}, {"", "", "k"}},
	{{".app.", ".ns.", ".k."}, {"app", "ns", "k"}},
	{{"app", "", "."}, {"app", "", ".."}},
	{{"app", "", strings.Repeat("k", 300)}, {"apq", "", strings.Repeat("k", 300)}},
	{{strings.Repeat("p", 300), "", "k"}, {strings.Repeat("p", 301), "", "k"}},
	{{"app", "", "k:fresh"}, {"app", "", "k"}},
	{{"app", "", "|tag:t"}, {"app", "", "cachekit:tag:t"}},
}

// Store is a store that starts empty, with a way to list and clear it.
type Store struct {
	d    cache.Driver
	scan driver.KeySpace
}

// NewStore returns d as a Store, emptied first: every key it holds is deleted. d must
// be a driver of the test's own.
func NewStore(t testing.TB, d interface {
	cache.Driver
	driver.KeySpace
}) Store {
	t.Helper()
	s := Store{d: d, scan: d}
	s.clear(t)
	return s
}

func (s Store) keys(t testing.TB) []string { t.Helper(); return StoredKeys(t, s.scan) }

func (s Store) clear(t testing.TB) {
	t.Helper()
	if keys := s.keys(t); len(keys) > 0 {
		if err := s.d.Delete(context.Background(), keys...); err != nil {
			t.Fatal(err)
		}
	}
}

// StoredKeys lists every key the driver holds, sorted.
func StoredKeys(t testing.TB, d driver.KeySpace) []string {
	t.Helper()
	var keys []string
	if err := d.Scan(context.Background(), "", func(k string) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// tenantKey carries the prefix that Check's PrefixFunc returns.
type tenantKey struct{}

func tenantPrefix(ctx context.Context) string { s, _ := ctx.Value(tenantKey{}).(string); return s }

// keySide is one triple's cache and where the rules say its keys are.
type keySide struct {
	tr     Triple
	c      *cache.Cache // the cache itself, without the namespace
	ctx    context.Context
	prefix string   // the prefix in force
	full   string   // the stored key of tr.Key
	stored []string // full and its records, sorted
}

func trimDots(s string) string { return strings.Trim(s, ".") }

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

// under reports whether the stored key s lies in the scope (s itself or below it).
func under(s, scope string) bool { return scope == "" || s == scope || strings.HasPrefix(s, scope+".") }

// Check runs the key-space property for x and y on st, which starts empty: with
// static prefixes (a cache per triple) or with funcPrefix (one cache whose PrefixFunc
// returns each triple's prefix).
func Check(t testing.TB, st Store, funcPrefix bool, x, y Triple) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mode := "Prefix"
	if funcPrefix {
		mode = "PrefixFunc"
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s %+v, %+v: "+format, append([]any{mode, x, y}, args...)...)
	}
	var shared *cache.Cache // the PrefixFunc cache; never closed: it would close st.d
	if funcPrefix {
		var err error
		if shared, err = cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": st.d}, PrefixFunc: tenantPrefix}); err != nil {
			fail("New: %v", err)
		}
	}
	// side makes tr's cache, or checks that the rules refuse its prefix, and touch nothing.
	side := func(tr Triple) *keySide {
		s := &keySide{tr: tr, ctx: ctx}
		if funcPrefix {
			s.c, s.prefix, s.ctx = shared, tr.Prefix, context.WithValue(ctx, tenantKey{}, tr.Prefix)
			if tr.Prefix == "" || strings.ContainsAny(tr.Prefix, ".|") {
				before := st.keys(t)
				if err := s.c.Set(s.ctx, "k", 1, 0); !errors.Is(err, cache.ErrInvalidKey) || !errors.Is(err, cache.ErrInvalidConfig) {
					fail("Set with the PrefixFunc prefix %q = %v; want it refused", tr.Prefix, err)
				}
				if err := s.c.Flush(s.ctx); !errors.Is(err, cache.ErrInvalidKey) {
					fail("Flush with the PrefixFunc prefix %q = %v; want it refused", tr.Prefix, err)
				}
				if after := st.keys(t); !slices.Equal(before, after) {
					fail("a refused call changed the store from %q to %q", before, after)
				}
				return nil
			}
		} else {
			s.prefix = trimDots(tr.Prefix)
			c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": st.d}, Prefix: tr.Prefix})
			if valid := !strings.ContainsAny(s.prefix, ".|"); valid != (err == nil) || err != nil && !errors.Is(err, cache.ErrInvalidConfig) {
				fail("New with Prefix %q = %v", tr.Prefix, err)
			}
			if err != nil {
				return nil
			}
			s.c = c // never closed: it would close st.d
		}
		s.full = join(join(s.prefix, trimDots(tr.NS)), tr.Key)
		s.stored = []string{s.full, s.full + ".|fresh", s.full + ".|none"}
		return s
	}
	// write stores a negative mark, then a value with its freshness mark, through s's
	// namespace view; it reports false when the rules refuse the key or namespace (and
	// checks that nothing was written).
	write := func(s *keySide, val, want string) bool {
		t.Helper()
		v := s.c.Namespace(s.tr.NS)
		before := st.keys(t)
		_, err := cache.RememberWith(s.ctx, v, s.tr.Key, cache.RememberOptions{NegativeTTL: time.Minute},
			func(context.Context) (string, error) { return "", cache.ErrNotFound })
		if s.tr.Key == "" || strings.Contains(s.tr.Key, "|") || strings.Contains(s.tr.NS, "|") {
			if !errors.Is(err, cache.ErrInvalidKey) {
				fail("Remember of %+v = %v; want ErrInvalidKey", s.tr, err)
			}
			if after := st.keys(t); !slices.Equal(before, after) {
				fail("a refused call changed the store from %q to %q", before, after)
			}
			return false
		}
		if want == val && !errors.Is(err, cache.ErrNotFound) || want != val && err != nil {
			fail("Remember of %+v = %v; want ErrNotFound, or a hit on the entry already there", s.tr, err)
		}
		got, err := cache.SWR(s.ctx, v, s.tr.Key, cache.SWROptions{Fresh: time.Minute, Stale: time.Hour},
			func(context.Context) (string, error) { return val, nil })
		if err != nil || got != want {
			fail("SWR of %+v = %q, %v; want %q", s.tr, got, err, want)
		}
		return true
	}
	a, b := side(x), side(y)
	if a == nil || b == nil {
		return
	}
	// Both sides write; the store then holds exactly the keys the rules name.
	writeBoth := func() bool {
		st.clear(t)
		if !write(a, "A", "A") {
			return false
		}
		if got := st.keys(t); !slices.Equal(got, a.stored) {
			fail("after %+v wrote, the store holds %q; want %q", a.tr, got, a.stored)
		}
		same := a.full == b.full
		want := "B"
		if same {
			want = "A" // the same stored key: by the rules, the same entry
		}
		if !write(b, "B", want) {
			return false
		}
		union := slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values(slices.Concat(a.stored, b.stored))))))
		if got := st.keys(t); !slices.Equal(got, union) {
			fail("after both wrote, the store holds %q; want %q", got, union)
		}
		if a.prefix != b.prefix && a.prefix != "" && b.prefix != "" && len(union) != 6 {
			fail("caches with the prefixes %q and %q share keys: %q", a.prefix, b.prefix, union)
		}
		return true
	}
	// expectLeft checks that exactly the written keys outside scope are left.
	expectLeft := func(op, scope string) {
		t.Helper()
		var want []string
		for _, k := range slices.Concat(a.stored, b.stored) {
			if !under(k, scope) && !slices.Contains(want, k) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		got := st.keys(t)
		if !slices.Equal(got, want) {
			fail("after %s (scope %q) the store holds %q; want %q", op, scope, got, want)
		}
		if a.prefix != b.prefix && a.prefix != "" && b.prefix != "" {
			for _, k := range b.stored {
				if !slices.Contains(got, k) {
					fail("%s through the prefix %q removed %q, a key of the prefix %q", op, a.prefix, k, b.prefix)
				}
			}
		}
	}

	if !writeBoth() {
		return
	}
	if path := trimDots(join(trimDots(a.tr.NS), a.tr.Key)); path != "" {
		if err := a.c.RemoveNamespace(a.ctx, path); err != nil {
			fail("RemoveNamespace(%q): %v", path, err)
		}
		expectLeft("RemoveNamespace("+path+")", join(a.prefix, path))
		writeBoth()
	}
	if err := a.c.Namespace(a.tr.NS).Flush(a.ctx); err != nil {
		fail("Flush: %v", err)
	}
	expectLeft("Flush", join(a.prefix, trimDots(a.tr.NS)))
	st.clear(t)
}
