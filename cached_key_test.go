package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// Memo keys are injective: long arguments are hashed into a form no short argument
// takes, so the hex of one argument's hash is a key of its own.
func TestCachedKeysAreInjective(t *testing.T) {
	c := newCache(t, cache.Config{})
	m := cache.Cached(c, "q", time.Minute, func(_ context.Context, s string) (string, error) { return s, nil })
	long := strings.Repeat("x", 201)
	sum := sha256.Sum256([]byte(long))
	hexSum := hex.EncodeToString(sum[:])
	ctx := ctxT(t)
	if got, err := m.Get(ctx, long); err != nil || got != long {
		t.Fatalf("Get(long) = %q, %v", got, err)
	}
	if got, err := m.Get(ctx, hexSum); err != nil || got != hexSum {
		t.Fatalf("Get(hex of the long argument's hash) = %.20q…, %v; want the argument itself", got, err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "ab.~|{}\"\\:x0"
	var args []string
	for range 2000 {
		n := rng.IntN(260)
		if rng.IntN(4) == 0 {
			n = 195 + rng.IntN(12) // around the limit
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		args = append(args, string(b))
	}
	args = append(args, "", "~", "~~", "|", "x|none", "~sha256:", long, long+"x")
	for _, a := range slices.Clone(args) { // the forms a hashed argument could take
		s := sha256.Sum256([]byte(a))
		h := hex.EncodeToString(s[:])
		args = append(args, h, "~"+h, "~sha256:"+h, "sha256:"+h, "~~sha256:"+h)
	}
	keys := map[string]string{}
	for _, a := range args {
		k, err := m.Key(a)
		if err != nil {
			t.Fatalf("Key(%q): %v", a, err)
		}
		if strings.Contains(k, "|") {
			t.Errorf("Key(%q) = %q holds the reserved marker", a, k)
		}
		if prev, ok := keys[k]; ok && prev != a {
			t.Fatalf("Key(%q) = Key(%q) = %q", a, prev, k)
		}
		keys[k] = a
	}

	// With an interface argument, every argument is keyed by its JSON: a string and the
	// number or boolean it spells never share a key.
	anyMemo := cache.Cached(c, "any", time.Minute, func(_ context.Context, a any) (string, error) { return fmt.Sprint(a), nil })
	seen := map[string]any{}
	for _, a := range []any{42, "42", true, "true", nil, "null", 1.5, "1.5", []int{1}, "[1]", "~", "~~"} {
		k, err := anyMemo.Key(a)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("Key(%#v) = Key(%#v) = %q", a, prev, k)
		}
		seen[k] = a
	}
}
