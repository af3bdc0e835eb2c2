package rediscache_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The near cache's session guarantees within one process: reads are monotonic (never
// older than a value the process has already read), and the process reads its own
// writes.

// floor is the highest value of a counter that a read of this process has returned.
type floor struct{ v atomic.Int64 }

// raise records a read that returned v.
func (f *floor) raise(v int64) {
	for {
		cur := f.v.Load()
		if v <= cur || f.v.CompareAndSwap(cur, v) {
			return
		}
	}
}

// TestNearMonotonicReads: another client writes an increasing counter every
// millisecond while eight goroutines of this process read it through the near cache.
// A read must never return a value lower than one that a read of this process returned
// before it began. The races it catches: a fill from a GET that ran before a write,
// kept while the write's invalidation is on its way, after another read already
// returned the write's value; and a read that went to Redis (the tracking not proved
// current, a miss) while an older copy stayed in the near tier, served again once the
// tracking proves current before the invalidation is applied. MaxStaleness is short
// (5 ms) so that reads often go to Redis, as on a busy machine.
func TestNearMonotonicReads(t *testing.T) {
	srv := redistest.Start(t)
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{MaxStaleness: 5 * time.Millisecond})
	other := plain(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	const key = "near.monotonic"
	if err := other.Set(ctx, key, "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFresh(t, d)
	var (
		wg         sync.WaitGroup
		seen       floor
		reads, bad atomic.Int64
		writes     int
	)
	wg.Go(func() {
		for i := 1; ctx.Err() == nil; i++ {
			if other.Set(context.Background(), key, strconv.Itoa(i), 0).Err() == nil {
				writes = i
			}
			time.Sleep(time.Millisecond)
		}
	})
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				before := seen.v.Load()
				v, ok, err := cache.GetAs[int64](context.Background(), c, key)
				if err != nil || !ok {
					t.Errorf("read: %v, found %v", err, ok)
					return
				}
				reads.Add(1)
				if v < before {
					if bad.Add(1) <= 5 {
						t.Errorf("a read returned %d after this process had read %d", v, before)
					}
				}
				seen.raise(v)
			}
		})
	}
	wg.Wait()
	t.Logf("%d writes, %d reads, %d went back", writes, reads.Load(), bad.Load())
}

// TestNearReadYourWrites: each of four goroutines writes its own key through the
// driver and reads it back at once, while four others read those keys continuously
// (filling the near tier, racing with the writes): the read after a write always
// returns that write.
func TestNearReadYourWrites(t *testing.T) {
	srv := redistest.Start(t)
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{})
	waitFresh(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	keys := []string{"ryw.0", "ryw.1", "ryw.2", "ryw.3"}
	var wg sync.WaitGroup
	var checked, missed atomic.Int64
	for _, k := range keys {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := c.Set(context.Background(), k, i, 0); err != nil {
					t.Errorf("set: %v", err)
					return
				}
				v, ok, err := cache.GetAs[int](context.Background(), c, k)
				checked.Add(1)
				if err != nil || !ok || v != i {
					if missed.Add(1) <= 5 {
						t.Errorf("%s: wrote %d, then read %d (found %v, %v)", k, i, v, ok, err)
					}
				}
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _, _ = cache.GetAs[int](context.Background(), c, k)
			}
		})
	}
	wg.Wait()
	t.Logf("%d writes read back, %d missed", checked.Load(), missed.Load())
}

// TestNearProbeDenied: New refuses Near for a user whose ACL denies PUBLISH or ROLE,
// the commands of the master proof: without them the near cache could never vouch for
// a copy.
func TestNearProbeDenied(t *testing.T) {
	srv := redistest.Start(t)
	admin := plain(t, srv.URL())
	ctx := context.Background()
	for _, cmd := range []string{"publish", "role"} {
		user := "no" + cmd
		if err := admin.Do(ctx, "acl", "setuser", user, "on", ">pw", "~*", "&*", "+@all", "-"+cmd).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := rediscache.New(rediscache.Options{URL: "redis://" + user + ":pw@" + srv.Addr() + "/0", Near: &rediscache.NearOptions{}})
		if err == nil || !strings.Contains(err.Error(), "ROLE and PUBLISH") {
			t.Errorf("a user without %s: New: %v; want an error naming ROLE and PUBLISH", cmd, err)
		}
	}
}
