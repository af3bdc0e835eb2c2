package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"5m", 5 * time.Minute},
		{"1h", time.Hour},
		{"1d", 24 * time.Hour},
		{"1w", 7 * 24 * time.Hour},
		{"1.5h", 90 * time.Minute},
		{"2 weeks", 14 * 24 * time.Hour},
		{"1 day", 24 * time.Hour},
		{"10 Minutes", 10 * time.Minute},
		{"500ms", 500 * time.Millisecond},
		{"1h30m", 90 * time.Minute},
		{"2h45m10s", 2*time.Hour + 45*time.Minute + 10*time.Second},
		{"90", 90 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{" 5m ", 5 * time.Minute},
		{"0", 0},
	} {
		got, err := cache.ParseDuration(tc.in)
		if got != tc.want || err != nil {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, nil", tc.in, got, err, tc.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	for _, in := range []string{"", "  ", "-5m", "-1", "5 parsecs", "m", "1y", "1x", "abc", "1..5h", "1h 30m", "1e9999", "NaN", "Inf", "99999999999999999999d", ".", "5m-"} {
		if got, err := cache.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, nil; want an error", in, got)
		} else if !strings.HasPrefix(err.Error(), "cache: invalid duration") {
			t.Errorf("ParseDuration(%q) error %q does not say what is wrong", in, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "1.5h", "2 weeks", "1h30m", "90", "-1", "", "1e308d", "0.000000001ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := cache.ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseDuration(%q) = %v with error %v; want 0 with an error", s, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative without an error", s, d)
		}
	})
}
