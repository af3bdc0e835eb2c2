package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestScan: glob characters in the prefix are literal, and a prefix spread over many
// keys (several SCAN pages, every master of a Cluster) is listed whole, once.
func TestScan(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		p := scope("scan")
		cleanup(t, d, p)
		set := func(keys ...string) {
			t.Helper()
			for _, k := range keys {
				if err := d.Set(ctx, driver.Entry{Key: p + "." + k, Value: []byte(`1`), TTL: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
		}
		scan := func(prefix string) []string {
			t.Helper()
			var got []string
			if err := d.Scan(ctx, p+"."+prefix, func(k string) bool { got = append(got, k[len(p)+1:]); return true }); err != nil {
				t.Fatalf("Scan(%q): %v", prefix, err)
			}
			slices.Sort(got)
			return got
		}
		cases := []struct {
			prefix      string
			found, kept []string
		}{
			{"a*b[c]", []string{"a*b[c]", "a*b[c]1", "a*b[c].x"}, []string{"aXb[c]", "aXbc", "a*bc", "a*b[c", "aXbX.1"}},
			{"q?", []string{"q?", "q?1"}, []string{"qX", "q"}},
			{`s\t`, []string{`s\t`, `s\t.1`}, []string{"st.1", `s\\t.1`}},
			{"{tag}ns", []string{"{tag}ns", "{tag}ns.1"}, []string{"{tag}n", "tagns.1"}},
		}
		for _, tc := range cases {
			set(tc.found...)
			set(tc.kept...)
		}
		for _, tc := range cases {
			want := slices.Clone(tc.found)
			slices.Sort(want)
			if got := scan(tc.prefix); !slices.Equal(got, want) {
				t.Errorf("Scan(%q) = %q; want %q", tc.prefix, got, want)
			}
		}

		// Many keys: several SCAN pages, on every master.
		const many = 1500
		entries := make([]driver.Entry, many)
		for i := range entries {
			entries[i] = driver.Entry{Key: fmt.Sprintf("%s.big.%d", p, i), Value: []byte(`1`), TTL: time.Minute}
		}
		if err := d.SetMany(ctx, entries); err != nil {
			t.Fatal(err)
		}
		got := scan("big.")
		if len(got) != many || len(slices.Compact(got)) != many {
			t.Errorf("Scan(big.) listed %d keys (%d distinct); want %d", len(got), len(slices.Compact(got)), many)
		}
		n := 0
		if err := d.Scan(ctx, p+".big.", func(string) bool { n++; return n < 3 }); err != nil || n != 3 {
			t.Errorf("Scan with fn returning false on the 3rd key: %d calls, %v; want 3, nil", n, err)
		}
	})
}

// TestScanClosedAndContext: Scan fails with ErrClosed after Close and with the context's
// error when it is done, before a command is sent.
func TestScanClosedAndContext(t *testing.T) {
	d := newDriver(t, rediscache.Options{URL: redistest.URL(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Scan(ctx, "", func(string) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled ctx = %v; want context.Canceled", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Scan(context.Background(), "", func(string) bool { return true }); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Scan after Close = %v; want ErrClosed", err)
	}
}
