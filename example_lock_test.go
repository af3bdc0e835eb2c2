package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cache"
)

// Idempotent webhook handling: a retry that arrives after the event was processed gets
// the first result instead of processing it again, which a lock alone cannot give.
func ExampleOnce() {
	c := newExampleCache()
	defer c.Close()
	ctx := context.Background()

	process := func(eventID string) {
		out, err := cache.Once(ctx, c, "webhook.stripe."+eventID, 24*time.Hour, func(ctx context.Context) (string, error) {
			return "charged " + eventID, nil
		})
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("ran=%v result=%q\n", out.Ran, out.Value)
	}
	process("evt_1")
	process("evt_1") // Stripe retries: not processed again
	// Output:
	// ran=true result="charged evt_1"
	// ran=false result="charged evt_1"
}

// Waiting for a lock instead of skipping, and keeping it alive while the work runs.
func ExampleLockWith_waitAndAutoExtend() {
	c := newExampleCache()
	defer c.Close()
	ctx := context.Background()

	out, err := cache.LockWith(ctx, c, "lock.reindex", cache.LockOptions{
		TTL:        time.Second,     // renewed every TTL/3 while fn runs
		AutoExtend: true,            // fn may outlive the TTL
		Wait:       5 * time.Second, // wait for a current holder instead of skipping
	}, func(ctx context.Context) (string, error) {
		// Long work checks ctx: it is cancelled with cause cache.ErrLockLost if the
		// lock is lost (a renewal finds it gone or fails).
		return "reindexed", ctx.Err()
	})
	fmt.Println(out.Acquired, out.Value, err)
	// Output:
	// true reindexed <nil>
}

// A fencing token lets the storage reject a holder whose lock has since passed on.
func ExampleHeldLock_fencingToken() {
	c := newExampleCache()
	defer c.Close()
	ctx := context.Background()

	var highest int64 // the storage's memory of the highest token it has accepted
	write := func(token int64) error {
		if token <= highest {
			return errors.New("stale fencing token: rejected")
		}
		highest = token
		return nil
	}
	for range 2 {
		_, err := cache.LockWith(ctx, c, "lock.ledger", cache.LockOptions{TTL: time.Minute, Fencing: true},
			func(ctx context.Context) (int, error) {
				token := cache.HeldLock(ctx).FencingToken()
				fmt.Println("token", token)
				return 0, write(token)
			})
		if err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(write(1)) // a paused old holder wakes up and writes with its old token
	// Output:
	// token 1
	// token 2
	// stale fencing token: rejected
}

// A lock handle for work that does not fit in a closure, handed to another goroutine by
// its token.
func ExampleAcquire() {
	c := newExampleCache()
	defer c.Close()
	ctx := context.Background()

	h, err := cache.Acquire(ctx, c, "lock.leader", cache.LockOptions{TTL: time.Minute, Owner: "node-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = cache.Acquire(ctx, c, "lock.leader", cache.LockOptions{TTL: time.Minute})
	fmt.Println("second:", errors.Is(err, cache.ErrNotAcquired))

	info, _ := cache.InspectLock(ctx, c, "lock.leader")
	fmt.Println("owner:", info.Owner)

	// Elsewhere, with only the token: release it.
	r, _ := cache.RestoreLock(ctx, c, "lock.leader", h.Token(), cache.LockOptions{})
	fmt.Println("release:", r.Release(ctx))
	fmt.Println("again:", errors.Is(h.Release(ctx), cache.ErrLockNotHeld))
	// Output:
	// second: true
	// owner: node-1
	// release: <nil>
	// again: true
}
