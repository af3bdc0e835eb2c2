package token

import (
	"crypto/rand"
	"strings"
	"testing"
)

var raceEnabled bool

func TestNew(t *testing.T) {
	a, b := New("pid.7"), New("pid.7")
	if a == b {
		t.Fatal("two tokens are equal")
	}
	if !strings.HasPrefix(a, "pid.7#") || len(a) != len("pid.7#")+26 || !Is(a) {
		t.Fatalf("token %q", a)
	}
	if n := testing.AllocsPerRun(100, func() { _ = New("owner") }); n != 1 && !raceEnabled {
		t.Fatalf("%v allocations, want 1", n)
	}
}

func TestIs(t *testing.T) {
	for s, want := range map[string]bool{
		"owner#" + rand.Text():              true, // crypto/rand's Text has New's alphabet and length
		"a#b#ABCDEFGHIJKLMNOPQRSTUVWXYZ":    true,
		"#ABCDEFGHIJKLMNOPQRSTUVWXY2":       true,
		"owner#ABCDEFGHIJKLMNOPQRSTUVWXY":   false, // 25
		"owner#ABCDEFGHIJKLMNOPQRSTUVWXYZ2": false, // 27
		"owner#abcdefghijklmnopqrstuvwxyz":  false,
		"owner#ABCDEFGHIJKLMNOPQRSTUVWXY1":  false,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ":        false,
		"":                                  false,
	} {
		if got := Is(s); got != want {
			t.Errorf("Is(%q) = %v", s, got)
		}
	}
}
