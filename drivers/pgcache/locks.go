package pgcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cachekit/cache/driver"
)

// maxPayload bounds a key sent as it is in a release's notification: PostgreSQL takes
// payloads under 8000 bytes. A longer key is sent as "sha256:" and the hex of its hash.
const maxPayload = 4000

// payload is what a release of key sends on the driver's channel, and what Watch
// matches.
func payload(key string) string {
	if len(key) <= maxPayload {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CompareAndDelete deletes key if its live value is still old (a lock's release), and
// in the same statement, only if it deleted, announces the release with
// pg_notify(channel, key), delivered when the statement commits.
func (d *Driver) CompareAndDelete(ctx context.Context, key string, old any) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, d.fail("compare-and-delete", key, err)
	}
	b, err := valueBytes(old)
	if err != nil {
		return false, d.fail("compare-and-delete", key, err)
	}
	var n int64
	if err := d.pool.QueryRow(ctx, d.sql.cad, key, b, d.channel, payload(key)).Scan(&n); err != nil {
		return false, d.fail("compare-and-delete", key, err)
	}
	return n == 1, nil
}

// CompareAndSwap writes e if e.Key's live value is still old, keeping its expiry with
// e.KeepTTL, and announces it like a release (waking the key's watchers), in one
// statement.
func (d *Driver) CompareAndSwap(ctx context.Context, old any, e driver.Entry) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, d.fail("compare-and-swap", e.Key, err)
	}
	ob, err := valueBytes(old)
	if err != nil {
		return false, d.fail("compare-and-swap", e.Key, err)
	}
	nb, err := valueBytes(e.Value)
	if err != nil {
		return false, d.fail("compare-and-swap", e.Key, err)
	}
	var n int64
	err = d.pool.QueryRow(ctx, d.sql.cas, e.Key, ob, nb, d.channel, e.KeepTTL, micros(e.TTL), payload(e.Key)).Scan(&n)
	if err != nil {
		return false, d.fail("compare-and-swap", e.Key, err)
	}
	return n == 1, nil
}

var errNoTTL = errors.New("extend needs a TTL > 0")

// Extend sets key's expiry to now() + ttl if its live value is still old (a lock's
// renewal), with one UPDATE.
func (d *Driver) Extend(ctx context.Context, key string, old any, ttl time.Duration) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, d.fail("extend", key, err)
	}
	b, err := valueBytes(old)
	if err != nil {
		return false, d.fail("extend", key, err)
	}
	if ttl <= 0 {
		return false, d.fail("extend", key, errNoTTL)
	}
	tag, err := d.pool.Exec(ctx, d.sql.extend, key, b, micros(ttl))
	if err != nil {
		return false, d.fail("extend", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// CreateFenced creates e if e.Key is absent or expired and returns the key's next
// fencing number, in one statement (so one transaction): the create, and only if it
// wrote, the counter's upsert in the fencing table (Options.Table + [FenceSuffix]),
// keyed by e.Key.
//
// The number handed out is max(counter + 1, the database's clock in microseconds since
// the Unix epoch, from clock_timestamp()), and the counter is set to it. So the numbers
// strictly increase across acquisitions, processes and restarts of the holders, and
// also across a loss of the counter (a DeleteNamespace or Flush that covers the lock's
// key deletes its counter with it; so does a restore from an older backup), as long as
// the database's clock moves forward. The numbers are large (about 1.8e15 in 2026) but
// below 2^53 until the year 2255, so they are exact in a JSON number and a float64.
func (d *Driver) CreateFenced(ctx context.Context, e driver.Entry) (int64, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, d.fail("create fenced", e.Key, err)
	}
	b, err := valueBytes(e.Value)
	if err != nil {
		return 0, false, d.fail("create fenced", e.Key, err)
	}
	var fence int64
	err = d.pool.QueryRow(ctx, d.sql.fenced, e.Key, b, micros(e.TTL)).Scan(&fence)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, d.fail("create fenced", e.Key, err)
	}
	return fence, true, nil
}

// TTL returns key's remaining time to live on the database's clock: found is false for a
// missing or expired key, and the TTL is 0 for a key that never expires.
func (d *Driver) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, d.fail("ttl", key, err)
	}
	var us *int64 // NULL: no expiry
	err := d.pool.QueryRow(ctx, d.sql.ttl, key).Scan(&us)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, d.fail("ttl", key, err)
	case us == nil:
		return 0, true, nil
	}
	return time.Duration(*us) * time.Microsecond, true, nil
}
