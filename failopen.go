package cache

import (
	"context"
	"errors"

	"github.com/cachekit/cache/driver"
)

type failOpenKey struct{}

// WithFailOpen returns a ctx under which the reads of the cache (Get, GetAs, Remember,
// SWR) fail open, or not, whatever [Config.FailOpen] says: see there for what failing
// open means and where it never applies.
func WithFailOpen(ctx context.Context, on bool) context.Context {
	return context.WithValue(ctx, failOpenKey{}, on)
}

// soft is err, or nil when the call fails open on it (see failsOpen), in which case it is
// reported as an error event of op: a read that failed taken as a miss, or a store of a
// loaded value that failed, which is best effort then.
func (c *Cache) soft(ctx context.Context, op operation, d *namedDriver, key string, err error) error {
	if err == nil || !c.failsOpen(ctx, err) {
		return err
	}
	c.done(op, d, key, 0, err, 0)
	return nil
}

// failsOpen reports whether the read error err of a call on ctx is to be taken as a miss
// (Config.FailOpen, WithFailOpen). It is asked only once a read has failed.
func (c *Cache) failsOpen(ctx context.Context, err error) bool {
	on := c.m.failOpen
	if v, ok := ctx.Value(failOpenKey{}).(bool); ok {
		on = v
	}
	return on && ctx.Err() == nil && !errors.Is(err, driver.ErrForeign) && !errors.Is(err, driver.ErrClosed) && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrInvalidKey)
}
