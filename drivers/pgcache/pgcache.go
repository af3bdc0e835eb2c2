// Package pgcache is the PostgreSQL driver, on pgx v5 (github.com/jackc/pgx/v5): the
// cache, and the lock written once on top of the driver primitives, kept in a table.
//
// Give it a pool you built (Options.Pool; the driver never closes it) or a URL
// (Options.URL, anything pgxpool.ParseConfig takes, such as
// postgres://user:password@host:5432/db?sslmode=verify-full&pool_max_conns=20; the
// driver builds the pool and closes it in Close). Importing the package registers the
// postgres:// and postgresql:// schemes with the registry package, whose URLs also take
// the driver's options (table, unlogged, ...; see docs/configuration.md). New does not
// connect: the first operation does, so New succeeds while the database is down.
// PostgreSQL 12 or later is required; PostgreSQL 15 is what the tests run.
//
// # Storage
//
// One table, "cachekit_entries" by default (Options.Table), one row per key:
//
//	key        text COLLATE "C" PRIMARY KEY  the final key the manager built (prefix + "." + key)
//	value      bytea NOT NULL                the codec's bytes, no envelope (JSON by default)
//	expires_at timestamptz                   NULL: no expiry
//
// and a second one, the table's name + "_fence", for the fencing counters of fenced
// locks: one row (key, fence bigint) per lock key that was ever taken with fencing. [Schema]
// returns the DDL. By default the driver creates both tables (CREATE TABLE IF NOT EXISTS)
// on its first operation; with Options.SkipCreateTable it never does, for teams that
// create them in their own migrations from [Schema].
//
// A table dropped under a running driver fails the call that finds it missing with an
// error matching [ErrMissingTable]; the driver then creates the tables again on its next
// call (CREATE TABLE IF NOT EXISTS, which leaves a table another process created
// meanwhile as it is), or, with Options.SkipCreateTable, never does: every call fails,
// naming Schema's DDL, until a migration runs it. A table name that ends in "_fence" or
// "_expires_at" is refused (see Options.Table), so that no driver's table is another's
// fencing table or index.
//
// A counter is the decimal text of the integer ("42"); a lock is a row whose value is a
// JSON string that starts with the owner label. Keys are PostgreSQL text: valid UTF-8
// without NUL bytes (a key with either is an error from the database).
//
// # The database's clock
//
// Every expiry is computed and compared by the database, on its own clock: a write
// stores expires_at = now() + TTL (microseconds, rounded up), and every read counts a row
// as present only while expires_at IS NULL OR expires_at > now(). Each statement of the
// driver runs in a transaction of its own, so now() is the statement's start. Clients'
// clocks never enter into it, so processes on hosts whose clocks disagree still agree
// about which entries and locks are live.
//
// Expired rows read as misses at once, and are deleted later: by a read that finds one
// (which reports it to the manager as an "expired" event), and by a background sweep in
// every driver, every Options.SweepInterval (a minute by default), which deletes at most
// Options.SweepBatch expired rows per statement (1000 by default) and at most ten such
// statements per pass, skipping rows that others hold (FOR UPDATE SKIP LOCKED), with the
// partial index on expires_at. Close stops it.
//
// # Statements
//
// Every operation is one SQL statement, atomic on the server:
//
//   - Get: SELECT. Set: INSERT ... ON CONFLICT DO UPDATE. Delete: DELETE ... = ANY.
//   - Create (SetIf IfAbsent, a lock's acquisition): an UPDATE of the row if it has
//     expired and, only if that wrote nothing, INSERT ... ON CONFLICT DO NOTHING, in one
//     statement; a live row is neither locked nor written, so waiters on a held lock
//     write nothing. Update (IfPresent): UPDATE ... WHERE live.
//   - CompareAndDelete (a lock's release): DELETE ... WHERE value = $old AND live, and
//     pg_notify of the release in the same statement. CompareAndSwap: UPDATE ... WHERE
//     value = $old AND live (keeping expires_at for KeepTTL), and pg_notify.
//   - Extend (a lock's renewal): UPDATE expires_at WHERE value = $old AND live.
//   - CreateFenced: the create and, only if it wrote, the key's fencing counter's next
//     value, in one statement (two data-modifying CTEs). See [Driver.CreateFenced].
//   - Increment: INSERT ... ON CONFLICT DO UPDATE that adds the delta to the decimal
//     text of a live integer, keeping its expiry; a missing or expired key becomes the
//     delta with the new key's TTL. A value that is not the text of an integer, or a sum
//     outside int64, changes nothing and is an error matching driver.ErrNotInteger.
//   - Pull: DELETE ... WHERE live RETURNING value. TTL: SELECT of expires_at - now().
//   - GetMany: SELECT ... WHERE key = ANY($1). SetMany: INSERT ... SELECT FROM unnest
//     ... ON CONFLICT DO UPDATE, 1000 entries a statement, keys sorted (so that
//     concurrent batches lock rows in one order and cannot deadlock).
//   - DeleteNamespace(ns): DELETE WHERE key = ns OR (key >= ns + "." AND key < ns +
//     "/"), a range on the primary key that the "C" collation makes exactly the keys
//     under ns + ".", never ns + "X"; the namespace's fencing counters go too. It is one
//     statement, so atomic.
//   - Flush: TRUNCATE of both tables: the tables are the driver's own.
//   - Scan: the prefix's key range, in key order, a page of 1000 keys a statement.
//   - Watch: LISTEN on one connection per driver; see [Driver.Watch].
//
// Lists are not native here (no driver.Lister): cache.NewList keeps a list as one value
// changed with cache.Modify, which runs on CompareAndSwap.
//
// # Durability
//
// A write is as durable as the table and the server's settings make it. In a logged
// table (the default) a committed write survives a crash of the server, and reaches
// streaming replicas; with synchronous replication (synchronous_commit = on or
// remote_apply and synchronous_standby_names set) it is on a standby before the call
// returns, so a lock survives a failover to that standby. Options.Unlogged makes the
// entries table UNLOGGED: writes skip the write-ahead log, which makes them faster, but
// the table is emptied by crash recovery (every entry and every lock is gone after a
// crash of the server) and is not replicated (a standby promoted by a failover has an
// empty table). The fencing counters' table is always logged, and fencing numbers also
// follow the database clock (see [Driver.CreateFenced]), so they keep growing across a
// crash either way.
//
// # When the database is down
//
// Every method returns an error, never a miss and never "someone else holds the lock":
// a statement that cannot be sent, or whose connection drops, fails, and a statement
// whose context ends fails at the context's deadline (pgx cancels the wait at once).
// There is no retry inside the driver, so an error comes back within the caller's
// deadline. Nothing needs restarting: the pool opens new connections when the server is
// back, and Watch's connection reconnects by itself. A statement whose connection drops
// after the server committed it is reported as an error although it took effect: a lock
// acquired that way stays until its TTL.
package pgcache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/cachekit/cache/driver"
)

// Options configure a [Driver]. Exactly one of Pool and URL must be set.
type Options struct {
	// Pool is the pgx pool to use. The driver never closes it.
	Pool *pgxpool.Pool
	// URL is where to connect, in any form pgxpool.ParseConfig takes (a postgres:// URL
	// or a key=value DSN, with pgxpool's pool_* parameters); the driver builds the pool
	// and closes it in Close.
	URL string
	// Table is the entries table: "name" or "schema.name", each a letter or "_" followed
	// by letters, digits and "_" (ASCII), quoted in every statement (so case-sensitive).
	// The fencing counters live in the table of the same name + [FenceSuffix], and the
	// expiry index is the name + "_expires_at"; a name that ends in either suffix is
	// refused (New returns an error), since it would be another table's fencing table or
	// index: so drivers on different tables never share a relation. Default:
	// [DefaultTable]. Drivers on one table share their entries and locks: that is how
	// processes share a cache.
	Table string
	// Unlogged creates the entries table UNLOGGED: faster writes, but the table is
	// emptied by crash recovery and not replicated (see Durability in the package doc).
	// It only matters when the driver creates the table.
	Unlogged bool
	// SkipCreateTable stops the driver from creating its tables: create them from
	// [Schema] in your migrations. Default: false, the driver creates them (CREATE TABLE
	// IF NOT EXISTS) on its first operation, which needs the CREATE privilege on the
	// schema only when they do not exist yet.
	SkipCreateTable bool
	// DefaultTTL is used when a caller passes a TTL of 0. Default: 0, no expiry.
	DefaultTTL time.Duration
	// Codec turns values into the bytes stored in the value column. Default:
	// driver.JSON.
	Codec driver.Codec
	// SweepInterval is how often the driver deletes expired rows. Default: a minute. A
	// negative interval turns the sweep off (expired rows then stay until a read finds
	// them or a write replaces them; they read as misses all the same).
	SweepInterval time.Duration
	// SweepBatch is the most expired rows one sweep statement deletes; a pass runs at most
	// ten. Default: 1000.
	SweepBatch int
}

// Default sweep settings.
const (
	DefaultSweepInterval = time.Minute
	DefaultSweepBatch    = 1000
	// sweepStatements bounds the statements of one sweep pass.
	sweepStatements = 10
)

// batchSize is the most keys or entries of one GetMany, SetMany, Delete or Scan statement.
const batchSize = 1000

// Driver is the PostgreSQL driver. Its methods are safe for concurrent use.
type Driver struct {
	pool       *pgxpool.Pool
	owns       bool // the driver built pool and closes it
	table      tableName
	unlogged   bool
	sql        statements
	channel    string
	defaultTTL time.Duration
	codec      driver.Codec
	closed     atomic.Bool
	hooks      driver.ExpiryHooks

	ready      atomic.Bool   // the tables exist (or SkipCreateTable)
	readySem   chan struct{} // serializes the creation
	skipCreate bool          // Options.SkipCreateTable

	hub hub // Watch's listening connection

	sweepStop context.CancelFunc
	sweepDone chan struct{}
	closeOnce sync.Once
}

var (
	_ driver.Driver         = (*Driver)(nil)
	_ driver.Atomic         = (*Driver)(nil)
	_ driver.KeySpace       = (*Driver)(nil)
	_ driver.Batcher        = (*Driver)(nil)
	_ driver.DefaultTTLer   = (*Driver)(nil)
	_ driver.Encoder        = (*Driver)(nil)
	_ driver.TTLReader      = (*Driver)(nil)
	_ driver.ExpiryNotifier = (*Driver)(nil)
)

// New returns a PostgreSQL driver. It does not connect; the first operation does (and
// creates the tables, unless Options.SkipCreateTable).
func New(o Options) (*Driver, error) {
	switch {
	case o.Pool == nil && o.URL == "":
		return nil, errors.New("pgcache: set Options.Pool or Options.URL")
	case o.Pool != nil && o.URL != "":
		return nil, errors.New("pgcache: set only one of Options.Pool and Options.URL")
	case o.DefaultTTL < 0:
		return nil, fmt.Errorf("pgcache: DefaultTTL %v is negative", o.DefaultTTL)
	case o.SweepBatch < 0:
		return nil, fmt.Errorf("pgcache: SweepBatch %d is negative", o.SweepBatch)
	}
	t, err := parseTable(o.Table)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		pool:       o.Pool,
		table:      t,
		unlogged:   o.Unlogged,
		sql:        newStatements(t),
		channel:    t.channel(),
		defaultTTL: o.DefaultTTL,
		codec:      o.Codec,
		readySem:   make(chan struct{}, 1),
	}
	if d.codec == nil {
		d.codec = driver.JSON
	}
	if o.SkipCreateTable {
		d.ready.Store(true)
		d.skipCreate = true
	}
	if o.URL != "" {
		cfg, err := pgxpool.ParseConfig(o.URL)
		if err != nil {
			// pgconn's error redacts the password, but says more than needed: keep ours.
			return nil, fmt.Errorf("pgcache: invalid Options.URL (not shown: it may hold a password): %v", parseError(err))
		}
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			return nil, fmt.Errorf("pgcache: %w", err)
		}
		d.pool, d.owns = p, true
	}
	interval, batch := o.SweepInterval, o.SweepBatch
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if batch == 0 {
		batch = DefaultSweepBatch
	}
	if interval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		d.sweepStop, d.sweepDone = cancel, make(chan struct{})
		go d.sweepLoop(ctx, interval, batch)
	}
	return d, nil
}

// parseError is pgconn's reason for a bad URL, without the URL: pgconn's message
// redacts the password only as far as it can tell one, and its wrapped error (a
// *url.Error) repeats the URL. It wraps nothing, so that no caller can reach the URL.
func parseError(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return errors.New("cannot parse it")
	}
	msg := pe.Error()
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		msg = msg[i+3:]
	}
	if inner := pe.Unwrap(); inner != nil {
		msg = strings.TrimSuffix(msg, " ("+inner.Error()+")")
		var ue *url.Error
		if errors.As(inner, &ue) {
			msg += ": " + ue.Err.Error()
		}
	}
	return errors.New(msg)
}

// Pool returns the pgx pool the driver uses.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Table returns the entries table's name, quoted as the driver's statements use it.
func (d *Driver) Table() string { return d.table.quoted("") }

// Channel returns the LISTEN/NOTIFY channel on which releases are announced (see
// [Driver.Watch]).
func (d *Driver) Channel() string { return d.channel }

// Codec returns the codec the manager encodes values with.
func (d *Driver) Codec() driver.Codec { return d.codec }

// DefaultTTL returns Options.DefaultTTL.
func (d *Driver) DefaultTTL() time.Duration { return d.defaultTTL }

// OnExpire adds fn to the functions called for each expired row the driver deletes: by
// the sweep, or by a Get that finds one. In a database that several drivers share, the
// driver whose sweep or read deletes a row reports it, once.
func (d *Driver) OnExpire(fn func(key string)) { d.hooks.OnExpire(fn) }

// Close stops the sweep and Watch's listening connection, and closes the pool if the
// driver built it from Options.URL (never one given as Options.Pool). Afterwards every
// method returns an error matching driver.ErrClosed.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		if d.sweepStop != nil {
			d.sweepStop()
			<-d.sweepDone
		}
		d.hub.stop()
		if d.owns {
			d.pool.Close()
		}
	})
	return nil
}

// check is the start of every operation: a closed driver or a done context fails before
// a statement is sent; the first one creates the tables.
func (d *Driver) check(ctx context.Context) error {
	if d.closed.Load() {
		return driver.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.ensure(ctx)
}

// ErrMissingTable: a statement found one of the driver's tables missing: dropped while
// the driver ran, or never created (with Options.SkipCreateTable). Without
// SkipCreateTable the driver creates the tables again on its next call (CREATE TABLE IF
// NOT EXISTS, which never touches a table that is there); with it, the error says to run
// [Schema]'s DDL, and every call fails until someone does.
var ErrMissingTable = errors.New("pgcache: a table of the driver does not exist")

// undefinedTable is PostgreSQL's SQLSTATE for a relation that does not exist.
const undefinedTable = "42P01"

// fail is the package's fail, and makes a missing table (SQLSTATE 42P01: every relation
// the driver's statements name is one of its tables) an error matching ErrMissingTable
// that names the fix. Without SkipCreateTable it also has the next call create the
// tables again: the statement that failed changed nothing, and CREATE TABLE IF NOT
// EXISTS, under the creation's advisory lock, leaves a table that another driver
// created meanwhile, and its rows, as they are.
func (d *Driver) fail(op, key string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == undefinedTable {
		if d.skipCreate {
			err = fmt.Errorf("%w: create the tables with the DDL of pgcache.Schema(%q, %v) (Options.SkipCreateTable is set, so the driver never creates them): %w",
				ErrMissingTable, d.table.option(), d.unlogged, err)
		} else {
			d.ready.Store(false)
			err = fmt.Errorf("%w (dropped while the driver ran?): the driver creates it again on its next call: %w", ErrMissingTable, err)
		}
	}
	return fail(op, key, err)
}

// fail wraps err with the operation and the key. A closed pool (the caller closed it
// under us, or Close raced) also matches driver.ErrClosed.
func fail(op, key string, err error) error {
	err = shortConnectError(err)
	if errors.Is(err, puddle.ErrClosedPool) && !errors.Is(err, driver.ErrClosed) {
		err = fmt.Errorf("%w: %w", driver.ErrClosed, err)
	}
	if key == "" {
		return fmt.Errorf("pgcache: %s: %w", op, err)
	}
	return fmt.Errorf("pgcache: %s %q: %w", op, key, err)
}

// valueBytes is the []byte the manager hands an Encoder driver.
func valueBytes(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		if b == nil {
			return []byte{}, nil // NOT NULL: an empty value is zero bytes, not SQL NULL
		}
		return b, nil
	case nil:
		return nil, errors.New("value is nil, want the codec's []byte")
	}
	return nil, fmt.Errorf("value is %T, want the codec's []byte (the manager encodes values with Codec())", v)
}

// micros is ttl in whole microseconds, rounded up (0 for no TTL): PostgreSQL's timestamps
// have no finer unit, and rounding down would expire a lock early, or make a TTL under a
// microsecond mean "no expiry".
func micros(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return int64((ttl + time.Microsecond - 1) / time.Microsecond)
}

// Get returns the bytes stored under key. A row found expired is a miss; it is deleted
// and reported as expired (see [Driver.OnExpire]).
func (d *Driver) Get(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, d.fail("get", key, err)
	}
	var v []byte
	var expired bool
	err := d.pool.QueryRow(ctx, d.sql.get, key).Scan(&v, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, d.fail("get", key, err)
	case expired:
		d.dropExpired(ctx, key)
		return nil, false, nil
	}
	return v, true, nil
}

// dropExpired deletes key if it is still expired and reports it. Best effort: the miss
// stands whatever happens here.
func (d *Driver) dropExpired(ctx context.Context, key string) {
	if !d.hooks.Active() {
		return
	}
	tag, err := d.pool.Exec(ctx, d.sql.dropExpired, key)
	if err == nil && tag.RowsAffected() == 1 && !d.closed.Load() {
		d.hooks.Expired(key)
	}
}

// Set stores e, replacing what was there, with INSERT ... ON CONFLICT DO UPDATE.
func (d *Driver) Set(ctx context.Context, e driver.Entry) error {
	if err := d.check(ctx); err != nil {
		return d.fail("set", e.Key, err)
	}
	b, err := valueBytes(e.Value)
	if err != nil {
		return d.fail("set", e.Key, err)
	}
	if _, err := d.pool.Exec(ctx, d.sql.set, e.Key, b, micros(e.TTL)); err != nil {
		return d.fail("set", e.Key, err)
	}
	return nil
}

// SetIf writes e if key is absent or expired (IfAbsent: an UPDATE of an expired row, or
// else an INSERT ... ON CONFLICT DO NOTHING, in one statement), or if it is live
// (IfPresent: UPDATE ... WHERE live), and reports whether a row was written. An error is
// never written == false.
func (d *Driver) SetIf(ctx context.Context, e driver.Entry, cond driver.Condition) (bool, error) {
	var op, q string
	switch cond {
	case driver.IfAbsent:
		op, q = "create", d.sql.create
	case driver.IfPresent:
		op, q = "update", d.sql.update
	default:
		return false, d.fail("set", e.Key, fmt.Errorf("unknown condition %v", cond))
	}
	if err := d.check(ctx); err != nil {
		return false, fail(op, e.Key, err)
	}
	b, err := valueBytes(e.Value)
	if err != nil {
		return false, fail(op, e.Key, err)
	}
	if cond == driver.IfAbsent {
		var n int64
		if err := d.pool.QueryRow(ctx, q, e.Key, b, micros(e.TTL)).Scan(&n); err != nil {
			return false, fail(op, e.Key, err)
		}
		return n == 1, nil
	}
	tag, err := d.pool.Exec(ctx, q, e.Key, b, micros(e.TTL))
	if err != nil {
		return false, fail(op, e.Key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Delete removes the keys, 1000 a statement.
func (d *Driver) Delete(ctx context.Context, keys ...string) error {
	if err := d.check(ctx); err != nil {
		return d.fail("delete", first(keys), err)
	}
	if len(keys) == 0 {
		return nil
	}
	keys = slices.Clone(keys)
	slices.Sort(keys) // one lock order for every batch statement
	keys = slices.Compact(keys)
	for i := 0; i < len(keys); i += batchSize {
		part := keys[i:min(i+batchSize, len(keys))]
		if _, err := d.pool.Exec(ctx, d.sql.del, part); err != nil {
			return d.fail("delete", first(part), err)
		}
	}
	return nil
}

func first(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// GetMany reads the keys with SELECT ... WHERE key = ANY($1), 1000 a statement.
func (d *Driver) GetMany(ctx context.Context, keys []string) ([]any, []bool, error) {
	vals, found := make([]any, len(keys)), make([]bool, len(keys))
	if err := d.check(ctx); err != nil {
		return nil, nil, d.fail("get many", first(keys), err)
	}
	for i := 0; i < len(keys); i += batchSize {
		part := keys[i:min(i+batchSize, len(keys))]
		got := make(map[string][]byte, len(part))
		rows, err := d.pool.Query(ctx, d.sql.getMany, part)
		if err != nil {
			return nil, nil, d.fail("get many", first(part), err)
		}
		var k string
		var v []byte
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
			got[k] = v
			v = nil // a fresh slice for the next row
			return nil
		})
		if err != nil {
			return nil, nil, d.fail("get many", first(part), err)
		}
		for j, key := range part {
			if b, ok := got[key]; ok {
				vals[i+j], found[i+j] = b, true
			}
		}
	}
	return vals, found, nil
}

// SetMany writes the entries with INSERT ... SELECT FROM unnest ... ON CONFLICT DO
// UPDATE, 1000 a statement, in key order. Of two entries with one key, the later wins.
// The statements are not atomic as a group.
func (d *Driver) SetMany(ctx context.Context, entries []driver.Entry) error {
	if len(entries) == 0 {
		return d.check(ctx)
	}
	if err := d.check(ctx); err != nil {
		return d.fail("set many", entries[0].Key, err)
	}
	// The last entry of each key, sorted by key: one statement may not write a row
	// twice, and one lock order keeps concurrent batches from deadlocking.
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[e.Key] = i
	}
	order := make([]int, 0, len(last))
	for _, i := range last {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		switch ka, kb := entries[a].Key, entries[b].Key; {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	for i := 0; i < len(order); i += batchSize {
		part := order[i:min(i+batchSize, len(order))]
		keys, vals, ttls := make([]string, len(part)), make([][]byte, len(part)), make([]int64, len(part))
		for j, idx := range part {
			e := entries[idx]
			b, err := valueBytes(e.Value)
			if err != nil {
				return d.fail("set many", e.Key, err)
			}
			keys[j], vals[j], ttls[j] = e.Key, b, micros(e.TTL)
		}
		if _, err := d.pool.Exec(ctx, d.sql.setMany, keys, vals, ttls); err != nil {
			return d.fail("set many", keys[0], err)
		}
	}
	return nil
}

// Pull gets and deletes a live key with DELETE ... RETURNING value.
func (d *Driver) Pull(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, d.fail("pull", key, err)
	}
	var v []byte
	err := d.pool.QueryRow(ctx, d.sql.pull, key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, d.fail("pull", key, err)
	}
	return v, true, nil
}

// Increment adds delta to the counter under key in one statement and returns the new
// value. A missing or expired key counts as 0 and gets ttlIfNew; a live one keeps its
// expiry. A value that is not the decimal text of an integer, and a result outside
// int64, leave the value alone and return an error matching driver.ErrNotInteger.
func (d *Driver) Increment(ctx context.Context, key string, delta int64, ttlIfNew time.Duration) (int64, error) {
	if err := d.check(ctx); err != nil {
		return 0, d.fail("increment", key, err)
	}
	var v []byte
	err := d.pool.QueryRow(ctx, d.sql.incr, key, delta, micros(ttlIfNew)).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, d.fail("increment", key, fmt.Errorf("%w (or the sum overflows int64); the value is left as it was", driver.ErrNotInteger))
	case err != nil:
		return 0, d.fail("increment", key, err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, d.fail("increment", key, fmt.Errorf("%w: the database returned %q", driver.ErrNotInteger, v))
	}
	return n, nil
}
