package pgcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// DefaultTable is the table the driver keeps its entries in when Options.Table is empty.
const DefaultTable = "cachekit_entries"

// FenceSuffix is appended to the entries table's name to name the fencing counters'
// table: "cachekit_entries_fence" by default. A table name that ends in it is refused
// (see Options.Table): it would be another table's fencing table.
const FenceSuffix = "_fence"

// indexSuffix is appended to the entries table's name to name its expiry index. A
// table name that ends in it is refused: it would be another table's index.
const indexSuffix = "_expires_at"

// maxIdent is PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1).
const maxIdent = 63

// tableName is a validated table name: an optional schema and the table, both plain
// identifiers.
type tableName struct {
	schema, name string
}

// parseTable validates name: "table" or "schema.table", each part a letter or "_"
// followed by letters, digits and "_" (ASCII), the table part short enough to take
// FenceSuffix within PostgreSQL's 63 bytes, and not ending in FenceSuffix or
// indexSuffix: the relations a driver makes for its table "X" are "X", "X_fence" and
// "X_expires_at", so refusing those endings keeps every driver's relations apart from
// every other's (without it, a Flush on "X" would empty the table of a driver on
// "X_fence"). Names are quoted in every statement, so they are case-sensitive: "Cache"
// and "cache" are two tables, and only the exact lowercase endings are refused.
func parseTable(name string) (tableName, error) {
	if name == "" {
		name = DefaultTable
	}
	schema, table, qualified := strings.Cut(name, ".")
	if !qualified {
		schema, table = "", name
	}
	for _, part := range []struct{ what, s string }{{"schema", schema}, {"table", table}} {
		if part.s == "" && (part.what == "table" || qualified) {
			return tableName{}, fmt.Errorf("pgcache: Options.Table %q: empty %s name", name, part.what)
		}
		if part.s != "" && !isIdent(part.s) {
			return tableName{}, fmt.Errorf("pgcache: Options.Table %q: the %s name must be a letter or _ followed by letters, digits and _ (ASCII)", name, part.what)
		}
	}
	if len(schema) > maxIdent {
		return tableName{}, fmt.Errorf("pgcache: Options.Table %q: the schema name is longer than %d bytes", name, maxIdent)
	}
	for _, sfx := range []struct{ suffix, what, harm string }{
		{FenceSuffix, "fencing counters' table", "a Flush of one would empty the other"},
		{indexSuffix, "expiry index", "one's index and the other's table would be one relation"},
	} {
		if base, ok := strings.CutSuffix(table, sfx.suffix); ok && base != "" {
			return tableName{}, fmt.Errorf("pgcache: Options.Table %q: a table name may not end in %q: that is the name of the %s of the table %q, so two drivers' tables would meet (%s); choose another name",
				name, sfx.suffix, sfx.what, base, sfx.harm)
		}
	}
	if len(table)+len(FenceSuffix) > maxIdent {
		return tableName{}, fmt.Errorf("pgcache: Options.Table %q: the table name is longer than %d bytes (it must take the suffix %q)", name, maxIdent-len(FenceSuffix), FenceSuffix)
	}
	return tableName{schema: schema, name: table}, nil
}

func isIdent(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// option returns the name as Options.Table gives it.
func (t tableName) option() string {
	if t.schema == "" {
		return t.name
	}
	return t.schema + "." + t.name
}

// quoted returns the name of the table with suffix appended, quoted for SQL.
func (t tableName) quoted(suffix string) string {
	if t.schema == "" {
		return `"` + t.name + suffix + `"`
	}
	return `"` + t.schema + `"."` + t.name + suffix + `"`
}

// channel is the LISTEN/NOTIFY channel of the table's releases: "<table>.released",
// or a hash of it where that would pass 63 bytes. pg_notify and LISTEN of a quoted name
// both take it as it is. The schema is left out, so that drivers that name one table
// in two ways ("b" through the search_path, "public.b") share a channel. Tables of one
// name in two schemas share it too: a waiter then also wakes on the other table's
// releases of its key, and finds its lock still held; a wake-up is a hint, never a
// grant.
func (t tableName) channel() string {
	if c := t.name + ".released"; len(c) <= maxIdent {
		return c
	}
	sum := sha256.Sum256([]byte(t.name))
	return "cachekit." + hex.EncodeToString(sum[:16]) + ".released"
}

// Schema returns the DDL of the driver's tables for table (as Options.Table: "" for
// [DefaultTable]), for teams that create tables in their own migrations (with
// Options.SkipCreateTable):
//
//   - the entries table: key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL,
//     expires_at timestamptz (NULL: no expiry), UNLOGGED when unlogged is true;
//   - a partial index on expires_at for the sweep;
//   - the fencing counters' table, table + [FenceSuffix]: key text COLLATE "C" PRIMARY
//     KEY, fence bigint NOT NULL. It is always logged: the counters must survive a
//     crash.
//
// Every statement is CREATE ... IF NOT EXISTS, so the DDL may run again. Schema panics
// if table is not a valid name (see Options.Table).
func Schema(table string, unlogged bool) string {
	t, err := parseTable(table)
	if err != nil {
		panic(err)
	}
	return strings.Join(t.ddl(unlogged), ";\n") + ";\n"
}

// ddl is the statements of Schema, one per element.
func (t tableName) ddl(unlogged bool) []string {
	kind := "TABLE"
	if unlogged {
		kind = "UNLOGGED TABLE"
	}
	index := `"` + t.name + indexSuffix + `"`
	return []string{
		fmt.Sprintf(`CREATE %s IF NOT EXISTS %s (
    key        text COLLATE "C" PRIMARY KEY,
    value      bytea NOT NULL,
    expires_at timestamptz
)`, kind, t.quoted("")),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (expires_at) WHERE expires_at IS NOT NULL`, index, t.quoted("")),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    key   text COLLATE "C" PRIMARY KEY,
    fence bigint NOT NULL
)`, t.quoted(FenceSuffix)),
	}
}

// ensure creates the tables on the first operation, unless Options.SkipCreateTable: it
// checks whether both exist and, if not, creates them in a transaction that holds an
// advisory lock on the table's name, so that processes starting together do not race
// (concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL's catalog). A failure is
// returned and the next operation tries again.
func (d *Driver) ensure(ctx context.Context) error {
	if d.ready.Load() {
		return nil
	}
	select {
	case d.readySem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.readySem }()
	if d.ready.Load() {
		return nil
	}
	if err := d.createTables(ctx); err != nil {
		return fmt.Errorf("create the tables: %w", err)
	}
	d.ready.Store(true)
	return nil
}

func (d *Driver) createTables(ctx context.Context) error {
	var exists bool
	entries, fences := d.table.quoted(""), d.table.quoted(FenceSuffix)
	const check = `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL`
	if err := d.pool.QueryRow(ctx, check, entries, fences).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('cachekit.create ' || $1))`, entries); err != nil {
		return err
	}
	for _, stmt := range d.table.ddl(d.unlogged) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
