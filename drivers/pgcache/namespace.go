package pgcache

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// DeleteNamespace deletes ns and every key that starts with ns + ".", never ns + "X",
// with their fencing counters, in one statement: a range on the primary key (see the
// package doc).
func (d *Driver) DeleteNamespace(ctx context.Context, ns string) error {
	if err := d.check(ctx); err != nil {
		return d.fail("delete namespace", ns, err)
	}
	if _, err := d.pool.Exec(ctx, d.sql.delNS, ns, ns+".", ns+"/"); err != nil {
		return d.fail("delete namespace", ns, err)
	}
	return nil
}

// Flush deletes every entry and every fencing counter, with TRUNCATE of both tables:
// they are the driver's own. TRUNCATE waits for the statements running on them, and
// holds them for its own short moment.
func (d *Driver) Flush(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return d.fail("flush", "", err)
	}
	if _, err := d.pool.Exec(ctx, d.sql.flush); err != nil {
		return d.fail("flush", "", err)
	}
	return nil
}

// Scan calls fn with every live key that starts with prefix, in key order, reading 1000
// keys a statement on the primary key's range [prefix, upper bound of prefix): keys
// written or deleted during the scan may or may not be seen. Fencing counters are not
// keys and are not listed.
func (d *Driver) Scan(ctx context.Context, prefix string, fn func(key string) bool) error {
	if err := d.check(ctx); err != nil {
		return d.fail("scan", prefix, err)
	}
	upper, bounded := upperBound(prefix)
	after, firstPage := prefix, true
	for {
		var rows pgx.Rows
		var err error
		switch {
		case firstPage && bounded:
			rows, err = d.pool.Query(ctx, d.sql.scanFirstTo, after, batchSize, upper)
		case firstPage:
			rows, err = d.pool.Query(ctx, d.sql.scanFirst, after, batchSize)
		case bounded:
			rows, err = d.pool.Query(ctx, d.sql.scanNextTo, after, batchSize, upper)
		default:
			rows, err = d.pool.Query(ctx, d.sql.scanNext, after, batchSize)
		}
		if err != nil {
			return d.fail("scan", prefix, err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return d.fail("scan", prefix, err)
		}
		for _, k := range keys {
			if !fn(k) {
				return nil
			}
		}
		if len(keys) < batchSize {
			return nil
		}
		after, firstPage = keys[len(keys)-1], false
		if err := ctx.Err(); err != nil {
			return d.fail("scan", prefix, err)
		}
	}
}

// upperBound returns the least string, valid UTF-8, above every string that starts with
// prefix, in byte order (the "C" collation): prefix with its last character replaced by
// the next one (dropping trailing U+10FFFF characters). ok is false when there is none
// (an empty prefix): every key is then above the prefix. Incrementing the last byte
// instead could make invalid UTF-8, which PostgreSQL refuses as text.
func upperBound(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.RuneError && size == 1:
			// Not UTF-8: the database refuses such a prefix anyway; scan to the end.
			return "", false
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF: // the next one is past the surrogates
			return prefix + string(rune(0xE000)), true
		}
		return prefix + string(r+1), true
	}
	return "", false
}

// sweepLoop deletes expired rows every interval until ctx ends.
func (d *Driver) sweepLoop(ctx context.Context, interval time.Duration, batch int) {
	defer close(d.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.sweep(ctx, batch)
	}
}

// sweep runs one pass: up to sweepStatements statements of at most batch rows each,
// until one deletes fewer than batch. Errors end the pass; the next one tries again.
func (d *Driver) sweep(ctx context.Context, batch int) int {
	if d.check(ctx) != nil {
		return 0
	}
	total := 0
	for range sweepStatements {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := d.sweepOnce(sctx, batch)
		cancel()
		total += n
		if err != nil || n < batch {
			break
		}
	}
	return total
}

func (d *Driver) sweepOnce(ctx context.Context, batch int) (int, error) {
	if !d.hooks.Active() {
		tag, err := d.pool.Exec(ctx, d.sql.sweep, batch)
		return int(tag.RowsAffected()), err
	}
	rows, err := d.pool.Query(ctx, d.sql.sweepR, batch)
	if err != nil {
		return 0, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if d.closed.Load() {
			break
		}
		d.hooks.Expired(k)
	}
	return len(keys), nil
}
