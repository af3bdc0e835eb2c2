package rediscache_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/redistest"
)

// TestKeySpace runs the key-space property of the root package's FuzzKeySpace (a copy of
// its checkKeySpace: test code cannot be shared between packages) on a Redis of its own,
// which starts empty: prefixes never nest, records never take an application key's name,
// Flush and RemoveNamespace stay in their scope.
func TestKeySpace(t *testing.T) {
	srv := redistest.Start(t)
	d := newDriver(t, rediscache.Options{URL: srv.URL(), OwnsDatabase: true}) // a server of its own: Flush without a prefix may empty it
	for _, tc := range ksCases {
		for _, funcPrefix := range []bool{false, true} {
			checkKeySpace(t, newKSStore(t, d), funcPrefix, tc[0], tc[1])
		}
	}
}

type ksTenantKey struct{}

func ksTenantPrefix(ctx context.Context) string { s, _ := ctx.Value(ksTenantKey{}).(string); return s }

func ksStoredKeys(t testing.TB, d driver.Scanner) []string {
	t.Helper()
	var keys []string
	if err := d.Scan(context.Background(), "", func(k string) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

type ksTriple struct{ prefix, ns, key string }

// ksCases are the root package's adversarial pairs of triples.
var ksCases = [][2]ksTriple{
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

// ksStore is a store that starts empty, with a way to list and clear it.
type ksStore struct {
	d    cache.Driver
	scan driver.Scanner
}

func newKSStore(t testing.TB, d interface {
	cache.Driver
	driver.Scanner
}) ksStore {
	t.Helper()
	s := ksStore{d: d, scan: d}
	s.clear(t)
	return s
}

func (s ksStore) keys(t testing.TB) []string { t.Helper(); return ksStoredKeys(t, s.scan) }

func (s ksStore) clear(t testing.TB) {
	t.Helper()
	if keys := s.keys(t); len(keys) > 0 {
		if err := s.d.Delete(context.Background(), keys...); err != nil {
			t.Fatal(err)
		}
	}
}

// ksSide is one triple's cache and where the rules say its keys are.
type ksSide struct {
	tr     ksTriple
	c      *cache.Cache // the cache itself, without the namespace
	ctx    context.Context
	prefix string   // the prefix in force
	full   string   // the stored key of tr.key
	stored []string // full and its records, sorted
}

func trimDotsT(s string) string { return strings.Trim(s, ".") }

func joinT(a, b string) string {
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

// checkKeySpace runs the key-space property for x and y on st, which starts empty: with
// static prefixes (a cache per triple) or with funcPrefix (one cache whose PrefixFunc
// returns each triple's prefix).
func checkKeySpace(t testing.TB, st ksStore, funcPrefix bool, x, y ksTriple) {
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
		if shared, err = cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": st.d}, PrefixFunc: ksTenantPrefix}); err != nil {
			fail("New: %v", err)
		}
	}
	// side makes tr's cache, or checks that the rules refuse its prefix, and touch nothing.
	side := func(tr ksTriple) *ksSide {
		s := &ksSide{tr: tr, ctx: ctx}
		if funcPrefix {
			s.c, s.prefix, s.ctx = shared, tr.prefix, context.WithValue(ctx, ksTenantKey{}, tr.prefix)
			if tr.prefix == "" || strings.ContainsAny(tr.prefix, ".|") {
				before := st.keys(t)
				if err := s.c.Set(s.ctx, "k", 1, 0); !errors.Is(err, cache.ErrInvalidKey) || !errors.Is(err, cache.ErrInvalidConfig) {
					fail("Set with the PrefixFunc prefix %q = %v; want it refused", tr.prefix, err)
				}
				if err := s.c.Flush(s.ctx); !errors.Is(err, cache.ErrInvalidKey) {
					fail("Flush with the PrefixFunc prefix %q = %v; want it refused", tr.prefix, err)
				}
				if after := st.keys(t); !slices.Equal(before, after) {
					fail("a refused call changed the store from %q to %q", before, after)
				}
				return nil
			}
		} else {
			s.prefix = trimDotsT(tr.prefix)
			c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": st.d}, Prefix: tr.prefix})
			if valid := !strings.ContainsAny(s.prefix, ".|"); valid != (err == nil) || err != nil && !errors.Is(err, cache.ErrInvalidConfig) {
				fail("New with Prefix %q = %v", tr.prefix, err)
			}
			if err != nil {
				return nil
			}
			s.c = c // never closed: it would close st.d
		}
		s.full = joinT(joinT(s.prefix, trimDotsT(tr.ns)), tr.key)
		s.stored = []string{s.full, s.full + ".|fresh", s.full + ".|none"}
		return s
	}
	// write stores a negative mark, then a value with its freshness mark, through s's
	// namespace view; it reports false when the rules refuse the key or namespace (and
	// checks that nothing was written).
	write := func(s *ksSide, val, want string) bool {
		t.Helper()
		v := s.c.Namespace(s.tr.ns)
		before := st.keys(t)
		_, err := cache.RememberWith(s.ctx, v, s.tr.key, cache.RememberOptions{NegativeTTL: time.Minute},
			func(context.Context) (string, error) { return "", cache.ErrNotFound })
		if s.tr.key == "" || strings.Contains(s.tr.key, "|") || strings.Contains(s.tr.ns, "|") {
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
		got, err := cache.SWR(s.ctx, v, s.tr.key, cache.SWROptions{Fresh: time.Minute, Stale: time.Hour},
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
	if path := trimDotsT(joinT(trimDotsT(a.tr.ns), a.tr.key)); path != "" {
		if err := a.c.RemoveNamespace(a.ctx, path); err != nil {
			fail("RemoveNamespace(%q): %v", path, err)
		}
		expectLeft("RemoveNamespace("+path+")", joinT(a.prefix, path))
		writeBoth()
	}
	if err := a.c.Namespace(a.tr.ns).Flush(a.ctx); err != nil {
		fail("Flush: %v", err)
	}
	expectLeft("Flush", joinT(a.prefix, trimDotsT(a.tr.ns)))
	st.clear(t)
}
