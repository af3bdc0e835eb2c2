package drivertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// scanCases are the promises of Cache.Scan and ListLocks.
var scanCases = []testCase{
	{
		name:        "Scan",
		explanation: "Scan lists the scope's keys under a namespace, dot boundary kept, without the prefix",
		needs:       []capability{keySpace},
		f: func(t *testing.T, e *env) {
			for _, k := range []string{"users", "users.1", "users.2.x", "usersX", "posts.1"} {
				mustSet(t, e, k, 1, time.Minute)
			}
			other := e.sibling(t, e.prefix+"B")
			if err := other.Set(e.ctx, "users.9", 1, time.Minute); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = other.Remove(e.ctx, "users.9") }()
			var got []string
			if err := e.c.Scan(e.ctx, "users", func(k string) bool { got = append(got, k); return true }); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if want := []string{"users", "users.1", "users.2.x"}; !slices.Equal(got, want) {
				t.Fatalf("Scan(users) = %q; want %q", got, want)
			}
			got = nil
			if err := e.c.Namespace("users").Scan(e.ctx, "", func(k string) bool { got = append(got, k); return true }); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if want := []string{"1", "2.x"}; !slices.Equal(got, want) {
				t.Fatalf("Namespace(users).Scan() = %q; want %q", got, want)
			}
			n := 0
			_ = e.c.Scan(e.ctx, "", func(string) bool { n++; return n < 2 })
			if n != 2 {
				t.Fatalf("Scan went on after fn returned false (%d calls)", n)
			}
		},
	},
	{
		name:        "ListLocks",
		explanation: "ListLocks finds the held locks with their owners",
		needs:       []capability{atomicOps, keySpace},
		f: func(t *testing.T, e *env) {
			mustSet(t, e, "locks.not-a-lock", "value#with-hash", time.Minute)
			_, err := cache.LockWith(e.ctx, e.c, "locks.import", cache.LockOptions{TTL: time.Minute, Owner: "worker-7"},
				func(ctx context.Context) (int, error) {
					infos, err := cache.ListLocks(ctx, e.c, "locks")
					if err != nil {
						return 0, err
					}
					if len(infos) != 1 || infos[0].Key != "locks.import" || infos[0].Owner != "worker-7" {
						t.Errorf("ListLocks = %+v; want the one lock held by worker-7", infos)
					}
					return 0, nil
				})
			if err != nil {
				t.Fatal(err)
			}
		},
	},
}
