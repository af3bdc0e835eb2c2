package rediscache

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestSlotMatchesRedis: our hash-slot function is Redis Cluster's (CLUSTER KEYSLOT),
// hash tags and stray braces included.
func TestSlotMatchesRedis(t *testing.T) {
	o, err := redis.ParseClusterURL(redistest.ClusterURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: o.Addrs[0]})
	defer c.Close()
	ctx := context.Background()
	keys := []string{"", "foo", "{user1000}.following", "{user1000}.followers", "foo{}{bar}", "foo{{bar}}zap",
		"foo{bar}{zap}", "{}", "{", "}", "a{b", "a}b{c}", "billing.lock.x", "x.|fence{3}", "日本語"}
	for range 200 {
		k := rand.Text()
		if k[0] < 'H' {
			k = k[:5] + "{" + k[5:9] + "}" + k[9:]
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := slot(k); int64(got) != want {
			t.Errorf("slot(%q) = %d; CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

// TestFenceKeyColocated: a fencing counter lies in its key's hash slot, whatever braces
// the key has, so that the create-fenced script may touch both on a Cluster.
func TestFenceKeyColocated(t *testing.T) {
	keys := []string{"billing.lock.x", "lock", "{tag}lock", "a{tag}b", "a{b", "a{}b", "a}b", "{}", "x{y}z{w}", "a{b}}", "a{{b}"}
	for range 300 {
		keys = append(keys, "p."+rand.Text())
	}
	for _, k := range keys {
		f := fenceKey(k)
		if !strings.HasPrefix(f, k+".|fence") {
			t.Errorf("fenceKey(%q) = %q; want it to start with the key + \".|fence\"", k, f)
		}
		if slot(f) != slot(k) {
			t.Errorf("fenceKey(%q) = %q is in slot %d; the key is in slot %d", k, f, slot(f), slot(k))
		}
		if again := fenceKey(k); again != f {
			t.Errorf("fenceKey(%q) is not stable: %q, then %q", k, f, again)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"users":   "users",
		"a*b":     `a\*b`,
		"q?":      `q\?`,
		"r[12]":   `r\[12\]`,
		`s\t`:     `s\\t`,
		"{x}.y-z": "{x}.y-z",
	} {
		if got := escapeGlob(in); got != want {
			t.Errorf("escapeGlob(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestPxMillis(t *testing.T) {
	for ttl, want := range map[time.Duration]int64{
		time.Nanosecond:                    1,
		300 * time.Microsecond:             1,
		time.Millisecond:                   1,
		time.Millisecond + time.Nanosecond: 2,
		1500 * time.Microsecond:            2,
		time.Second:                        1000,
		time.Duration(1<<63 - 1):           (1<<63 - 1) / int64(time.Millisecond),
	} {
		if got := pxMillis(ttl); got != want {
			t.Errorf("pxMillis(%v) = %d; want %d", ttl, got, want)
		}
	}
}

// TestLockClientKinds: the driver builds a fail-fast lock client for a plain client and
// a Cluster client, and uses a Sentinel client, a Cluster client with its own
// ClusterSlots and a Ring as they are (a copy of those would miss failovers).
func TestLockClientKinds(t *testing.T) {
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	sentinel := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}})
	slots := redis.NewClusterClient(&redis.ClusterOptions{ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) { return nil, nil }})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
		own  bool
	}{{"plain", plain, true}, {"cluster", cluster, true}, {"sentinel", sentinel, false}, {"cluster with ClusterSlots", slots, false}, {"ring", ring, false}} {
		lc, own := lockClient(tc.c)
		if own != tc.own || (own == (lc == tc.c)) {
			t.Errorf("%s: built its own lock client: %v (same client: %v); want %v", tc.name, own, lc == tc.c, tc.own)
		}
		if own {
			_ = lc.Close()
		}
		_ = tc.c.Close()
	}
}
