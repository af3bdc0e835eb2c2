package pgcache

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestUpperBound: the bound is valid UTF-8, above every string with the prefix and at
// or below every string above them, in byte order.
func TestUpperBound(t *testing.T) {
	for _, tc := range []struct {
		prefix, want string
		ok           bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"ns.", "ns/", true},
		{"é", "ê", true},             // C3 A9 → C3 AA
		{"x\u00bf", "x\u00c0", true}, // C2 BF → C3 80: the next character, not byte BF + 1
		{"x\u07ff", "x\u0800", true}, // two bytes → three
		{"x\ud7ff", "x\ue000", true}, // past the surrogates
		{"x\U0010ffff", "y", true},   // the last character has no successor: drop it
		{"\U0010ffff\U0010ffff", "", false},
	} {
		got, ok := upperBound(tc.prefix)
		if got != tc.want || ok != tc.ok {
			t.Errorf("upperBound(%q) = %q, %v; want %q, %v", tc.prefix, got, ok, tc.want, tc.ok)
		}
		if ok && !utf8.ValidString(got) {
			t.Errorf("upperBound(%q) = %q: not UTF-8", tc.prefix, got)
		}
		if !ok {
			continue
		}
		for _, suffix := range []string{"", "\x00", "z", "\U0010ffff", strings.Repeat("\U0010ffff", 3)} {
			if s := tc.prefix + suffix; s >= got {
				t.Errorf("upperBound(%q) = %q is not above %q", tc.prefix, got, s)
			}
		}
	}
}

// TestParseTable: names are identifiers, optionally schema-qualified, short enough for
// the fencing table's suffix; they are quoted in the SQL.
func TestParseTable(t *testing.T) {
	good := map[string]string{
		"":                      `"cachekit_entries"`,
		"cache":                 `"cache"`,
		"Cache_2":               `"Cache_2"`,
		"app.cache":             `"app"."cache"`,
		"_x._y":                 `"_x"."_y"`,
		strings.Repeat("a", 57): `"` + strings.Repeat("a", 57) + `"`,
	}
	for name, want := range good {
		tn, err := parseTable(name)
		if err != nil || tn.quoted("") != want {
			t.Errorf("parseTable(%q) = %s, %v; want %s", name, tn.quoted(""), err, want)
		}
	}
	for _, name := range []string{"1abc", "a-b", `a"b`, "a b", "a.b.c", ".a", "a.", "é", "a;drop table x", strings.Repeat("a", 58)} {
		if _, err := parseTable(name); err == nil {
			t.Errorf("parseTable(%q) accepted it", name)
		}
	}
	if c := (tableName{name: "cachekit_entries"}).channel(); c != "cachekit_entries.released" {
		t.Errorf("channel = %q", c)
	}
	long := tableName{schema: strings.Repeat("s", 40), name: strings.Repeat("t", 40)}
	if c := long.channel(); len(c) > maxIdent {
		t.Errorf("channel of a long name = %q, %d bytes; want at most %d", c, len(c), maxIdent)
	}
}

// TestMicros: TTLs round up to the microsecond, so a TTL never shortens, and a TTL under
// a microsecond is not "no expiry".
func TestMicros(t *testing.T) {
	for ttl, want := range map[time.Duration]int64{0: 0, 1: 1, 999: 1, 1000: 1, 1001: 2, time.Second: 1_000_000} {
		if got := micros(ttl); got != want {
			t.Errorf("micros(%d) = %d; want %d", ttl, got, want)
		}
	}
}

// TestPayload: a key is its own payload up to maxPayload bytes, a hash beyond.
func TestPayload(t *testing.T) {
	if p := payload("lock.a"); p != "lock.a" {
		t.Fatalf("payload = %q", p)
	}
	long := strings.Repeat("k", maxPayload+1)
	if p := payload(long); len(p) >= 8000 || !strings.HasPrefix(p, "sha256:") || p == payload(long+"x") {
		t.Fatalf("payload of a long key = %q", p)
	}
}
