package memokey

import (
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	type arg struct {
		ID   int
		Name string
		note string
	}
	for _, c := range []struct {
		a      any
		asJSON bool
		want   string
	}{
		{"abc", false, "abc"},
		{"abc", true, `"abc"`},
		{42, false, "42"},
		{42, true, "42"},
		{int64(-7), false, "-7"},
		{uint64(18446744073709551615), false, "18446744073709551615"},
		{true, false, "true"},
		{1.5, false, "1.5"},
		{arg{1, "a", "x"}, false, `{"ID":1,"Name":"a"}`},
		{map[string]int{"b": 2, "a": 1}, false, `{"a":1,"b":2}`},
		{"~x", false, "~~x"},
	} {
		got, err := Of(c.a, c.asJSON, "|")
		if err != nil || got != c.want {
			t.Errorf("Of(%#v, %v) = %q, %v; want %q", c.a, c.asJSON, got, err, c.want)
		}
	}
	if _, err := Of(func() {}, false, "|"); err == nil {
		t.Error("a func has a key")
	}
}

func TestEncodeIsInjective(t *testing.T) {
	long := strings.Repeat("x", MaxText+1)
	texts := []string{"", "a", "~", "~a", "~~a", "a|b", long, long[:MaxText], "~sha256:00", Encode("a|b", "|"), Encode(long, "|")}
	seen := map[string]string{}
	for _, s := range texts {
		k := Encode(s, "|")
		if strings.Contains(k, "|") || len(k) > MaxText+1 {
			t.Errorf("Encode(%q) = %q", s, k)
		}
		if o, ok := seen[k]; ok {
			t.Errorf("Encode(%q) = Encode(%q) = %q", s, o, k)
		}
		seen[k] = s
	}
	if k := Encode("a|b", "|"); !strings.HasPrefix(k, "~sha256:") || len(k) != len("~sha256:")+64 {
		t.Errorf("hashed form %q", k)
	}
	if Encode("a|b", "") != "a|b" {
		t.Error("no reserved text: hashed anyway")
	}
}
