package pgcache

import "strings"

// The driver's SQL. Every statement is one statement in its own implicit transaction
// (autocommit), so now() — PostgreSQL's transaction start time — is the time the
// statement started, on the database's clock: every expiry is computed and compared on
// that one clock, never on a client's. A statement that waits for a row lock held by
// another keeps its start time: an entry may then count as live for the length of the
// wait beyond its expiry (never as expired before it), and an expiry it writes is
// counted from the statement's start, so a lock it takes lives at least its TTL from
// the moment the request was sent.
//
// Placeholders in the templates: T is the entries table, F the fencing counters' table,
// LIVE the condition of an entry that has not expired, EXP(n) the expiry of a TTL given
// in microseconds as parameter $n (0: none).

const (
	liveSQL = `(expires_at IS NULL OR expires_at > now())`
)

// expSQL is the expiry of a TTL in microseconds given as parameter $n: NULL for 0.
func expSQL(n string) string {
	return `CASE WHEN $` + n + `::bigint > 0 THEN now() + $` + n + `::bigint * interval '1 microsecond' END`
}

// statements are the driver's SQL for one table.
type statements struct {
	get, set, create, update, del                 string
	cad, cas, extend, incr, pull, fenced, ttl     string
	getMany, setMany, delNS, flush, sweep, sweepR string
	scanFirst, scanNext, scanFirstTo, scanNextTo  string
	dropExpired                                   string
}

func newStatements(t tableName) statements {
	r := strings.NewReplacer(
		"{T}", t.quoted(""),
		"{F}", t.quoted(FenceSuffix),
		"{LIVE}", liveSQL,
		"{EXP3}", expSQL("3"),
		"{EXP4}", expSQL("4"),
	)
	s := func(q string) string { return r.Replace(q) }
	return statements{
		// Get reads an expired row too, to report it (ExpiryNotifier) and drop it.
		get:         s(`SELECT value, expires_at IS NOT NULL AND expires_at <= now() FROM {T} WHERE key = $1`),
		dropExpired: s(`DELETE FROM {T} WHERE key = $1 AND expires_at <= now()`),
		set: s(`INSERT INTO {T} (key, value, expires_at) VALUES ($1, $2, {EXP3})
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`),
		// Create: over an expired row (the UPDATE), or a new row (the INSERT, only when
		// the UPDATE wrote nothing); a live row is left alone, and the count is 0. Neither
		// step locks or writes a live row: an UPDATE locks only rows that pass its WHERE,
		// and ON CONFLICT DO NOTHING finds the conflict before it writes anything. So the
		// attempts of waiters on a held lock write nothing (no WAL) and never queue behind
		// each other or hold up the holder's renewal. Under READ COMMITTED, an UPDATE that
		// waited for a concurrent writer checks its WHERE again on the row that writer
		// left, and the INSERT's conflict check sees the latest committed row: of
		// concurrent creates of one key, exactly one writes.
		create: s(`WITH u AS (
  UPDATE {T} SET value = $2, expires_at = {EXP3} WHERE key = $1 AND expires_at <= now() RETURNING key
), i AS (
  INSERT INTO {T} (key, value, expires_at) SELECT $1, $2, {EXP3} WHERE NOT EXISTS (SELECT 1 FROM u)
  ON CONFLICT (key) DO NOTHING RETURNING key
)
SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM i)`),
		update: s(`UPDATE {T} SET value = $2, expires_at = {EXP3} WHERE key = $1 AND {LIVE}`),
		del:    s(`DELETE FROM {T} WHERE key = ANY($1::text[])`),
		// Compare-and-delete, and the release's notification in the same statement (so
		// in the same transaction: it is sent when, and only if, the delete commits). The
		// CTE that calls pg_notify is materialized (it calls a volatile function) and
		// read to its end by count, so it runs once per deleted row: zero or one.
		cad: s(`WITH d AS (DELETE FROM {T} WHERE key = $1 AND value = $2 AND {LIVE} RETURNING key),
n AS (SELECT pg_notify($3, $4) FROM d)
SELECT count(*) FROM n`),
		// Compare-and-swap: $5 keeps the remaining TTL; otherwise $6 is the new TTL.
		cas: s(`WITH u AS (UPDATE {T} SET value = $3,
    expires_at = CASE WHEN $5::boolean THEN expires_at WHEN $6::bigint > 0 THEN now() + $6::bigint * interval '1 microsecond' END
  WHERE key = $1 AND value = $2 AND {LIVE} RETURNING key),
n AS (SELECT pg_notify($4, $7) FROM u)
SELECT count(*) FROM n`),
		extend: s(`UPDATE {T} SET expires_at = now() + $3::bigint * interval '1 microsecond'
WHERE key = $1 AND value = $2 AND {LIVE}`),
		// Increment: a missing or expired key becomes the delta with the new TTL; a live
		// one whose bytes are the decimal text of an integer (checked on encode(value,
		// 'escape'), which any bytes pass through without error, before any cast) gets
		// old + delta, computed in numeric and kept only within bigint, with its expiry
		// unchanged. Anything else leaves the row as it was and returns no row: the
		// driver reports ErrNotInteger. CASE fixes the order of evaluation.
		incr: s(`INSERT INTO {T} AS t (key, value, expires_at)
VALUES ($1, convert_to($2::bigint::text, 'UTF8'), {EXP3})
ON CONFLICT (key) DO UPDATE SET
  value = CASE WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN excluded.value
    ELSE convert_to((convert_from(t.value, 'UTF8')::numeric + $2::bigint)::text, 'UTF8') END,
  expires_at = CASE WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN excluded.expires_at
    ELSE t.expires_at END
WHERE CASE
  WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN true
  WHEN encode(t.value, 'escape') ~ '^-?[0-9]{1,19}$' THEN
    (convert_from(t.value, 'UTF8')::numeric + $2::bigint) BETWEEN -9223372036854775808 AND 9223372036854775807
  ELSE false END
RETURNING t.value`),
		pull: s(`DELETE FROM {T} WHERE key = $1 AND {LIVE} RETURNING value`),
		// Fenced create: the create above and, only if it wrote, the counter's next
		// value — max(counter + 1, the database clock in microseconds since the Unix
		// epoch) — in one statement, so one transaction.
		fenced: s(`WITH u AS (
  UPDATE {T} SET value = $2, expires_at = {EXP3} WHERE key = $1 AND expires_at <= now() RETURNING key
), i AS (
  INSERT INTO {T} (key, value, expires_at) SELECT $1, $2, {EXP3} WHERE NOT EXISTS (SELECT 1 FROM u)
  ON CONFLICT (key) DO NOTHING RETURNING key
), c AS (
  SELECT key FROM u UNION ALL SELECT key FROM i
), f AS (
  INSERT INTO {F} AS f (key, fence)
  SELECT key, greatest(1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) FROM c
  ON CONFLICT (key) DO UPDATE SET fence = greatest(f.fence + 1, excluded.fence)
  RETURNING fence
)
SELECT fence FROM f`),
		// TTL: NULL for no expiry, else at least 1 µs.
		ttl: s(`SELECT CASE WHEN expires_at IS NOT NULL THEN
  greatest(1, ((extract(epoch FROM expires_at) - extract(epoch FROM now())) * 1000000)::bigint) END
FROM {T} WHERE key = $1 AND {LIVE}`),
		getMany: s(`SELECT key, value FROM {T} WHERE key = ANY($1::text[]) AND {LIVE}`),
		setMany: s(`INSERT INTO {T} (key, value, expires_at)
SELECT k, v, CASE WHEN ttl > 0 THEN now() + ttl * interval '1 microsecond' END
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS u(k, v, ttl)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`),
		// A namespace: the key itself and the range [ns + ".", ns + "/"): under the "C"
		// collation keys compare byte by byte, and "/" follows ".", so the range is
		// exactly the keys that start with ns + "." (never ns + "X"), found on the
		// primary key's btree. The fencing counters of the namespace's locks go too.
		delNS: s(`WITH e AS (DELETE FROM {T} WHERE key = $1 OR (key >= $2 AND key < $3)),
f AS (DELETE FROM {F} WHERE key = $1 OR (key >= $2 AND key < $3))
SELECT 1`),
		flush: s(`TRUNCATE {T}, {F}`),
		// The sweep: at most $1 expired rows, skipping rows that another sweep (or a
		// writer) holds.
		sweep: s(`DELETE FROM {T} WHERE key IN (
  SELECT key FROM {T} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
AND expires_at <= now()`),
		sweepR: s(`DELETE FROM {T} WHERE key IN (
  SELECT key FROM {T} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
AND expires_at <= now() RETURNING key`),
		// Scan pages, in key order: from the prefix ($1) or after the last key seen, up
		// to the prefix's upper bound ($2) where it has one.
		scanFirst:   s(`SELECT key FROM {T} WHERE key >= $1 AND {LIVE} ORDER BY key LIMIT $2`),
		scanNext:    s(`SELECT key FROM {T} WHERE key > $1 AND {LIVE} ORDER BY key LIMIT $2`),
		scanFirstTo: s(`SELECT key FROM {T} WHERE key >= $1 AND key < $3 AND {LIVE} ORDER BY key LIMIT $2`),
		scanNextTo:  s(`SELECT key FROM {T} WHERE key > $1 AND key < $3 AND {LIVE} ORDER BY key LIMIT $2`),
	}
}
