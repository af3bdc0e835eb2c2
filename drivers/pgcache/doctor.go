package pgcache

import (
	"context"
	"fmt"
	"strings"

	"github.com/cachekit/cache/driver"
)

// minServerVersion is the oldest PostgreSQL the driver supports, as server_version_num.
const minServerVersion = 120000

// Doctor checks the database and the driver's table against what locks and cache.Once
// need, and returns one finding per check (see [driver.Finding]):
//
//   - "version": the server's version, an error below PostgreSQL 12; an error when the
//     server is a standby in recovery (read-only).
//   - "synchronous_commit": a warning when off (a crash loses the last commits, locks and
//     Once results included).
//   - "table": whether the table exists; if not, an error with Options.SkipCreateTable
//     (every call fails) or without the CREATE privilege the driver needs to create it.
//   - "owner": the table's owner, an error when the driver's user lacks a privilege it
//     needs (SELECT, INSERT, UPDATE, DELETE; TRUNCATE for Flush).
//   - "unlogged": a warning when the table is UNLOGGED, or will be created so
//     (Options.Unlogged): crash recovery empties it and standbys do not have it, so
//     locks and Once results are lost in a crash or a failover.
//
// A database that cannot be reached is one error, "connection". Doctor changes
// nothing: it does not create the table.
func (d *Driver) Doctor(ctx context.Context) []driver.Finding {
	if d.closed.Load() {
		return []driver.Finding{pgConnectionFinding(driver.ErrClosed)}
	}
	s, err := d.readSettings(ctx)
	if err != nil {
		return []driver.Finding{pgConnectionFinding(err)}
	}
	out := []driver.Finding{s.versionFinding(), s.syncCommitFinding(), d.tableFinding(s)}
	if s.exists {
		out = append(out, d.ownerFinding(s))
	}
	return append(out, d.unloggedFinding(s))
}

func pgConnectionFinding(err error) driver.Finding {
	return driver.Finding{Severity: driver.SeverityError, Check: "connection",
		Message: fmt.Sprintf("cannot reach PostgreSQL: %v", shortConnectError(err)),
		Fix:     "check the URL, that PostgreSQL runs, and that this host and user may connect (pg_hba.conf)"}
}

// settings is what Doctor reads from the database.
type settings struct {
	versionNum       int
	version          string
	syncCommit       string
	inRecovery       bool
	user             string
	exists           bool
	persistence      string // pg_class.relpersistence: "p" logged, "u" unlogged
	owner            string
	ownerMember      bool     // the user is, or is a member of, the owner
	missingPrivs     []string // the privileges the driver needs on the table that the user lacks
	canCreateInScope bool     // CREATE on the table's schema (the current one without a schema)
}

const settingsSQL = `
SELECT current_setting('server_version_num')::int, current_setting('server_version'),
       current_setting('synchronous_commit'), pg_is_in_recovery(), current_user::text,
       c.oid IS NOT NULL, coalesce(c.relpersistence::text, ''),
       coalesce(pg_get_userbyid(c.relowner)::text, ''),
       coalesce(pg_has_role(c.relowner, 'MEMBER'), false),
       coalesce(array_remove(ARRAY[
           CASE WHEN has_table_privilege(c.oid, 'SELECT') THEN NULL ELSE 'SELECT' END,
           CASE WHEN has_table_privilege(c.oid, 'INSERT') THEN NULL ELSE 'INSERT' END,
           CASE WHEN has_table_privilege(c.oid, 'UPDATE') THEN NULL ELSE 'UPDATE' END,
           CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN NULL ELSE 'DELETE' END,
           CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN NULL ELSE 'TRUNCATE' END
       ], NULL), '{}'),
       coalesce(has_schema_privilege(coalesce($2, current_schema()), 'CREATE'), false)
FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`

func (d *Driver) readSettings(ctx context.Context) (settings, error) {
	var s settings
	var schema *string
	if d.table.schema != "" {
		schema = &d.table.schema
	}
	err := d.pool.QueryRow(ctx, settingsSQL, d.table.quoted(""), schema).Scan(
		&s.versionNum, &s.version, &s.syncCommit, &s.inRecovery, &s.user,
		&s.exists, &s.persistence, &s.owner, &s.ownerMember, &s.missingPrivs, &s.canCreateInScope)
	return s, err
}

func (s settings) versionFinding() driver.Finding {
	f := driver.Finding{Check: "version", Message: "PostgreSQL " + s.version}
	switch {
	case s.versionNum < minServerVersion:
		f.Severity = driver.SeverityError
		f.Message += ": the driver needs PostgreSQL 12 or later"
		f.Fix = "upgrade PostgreSQL"
	case s.inRecovery:
		f.Severity = driver.SeverityError
		f.Message += ", a standby in recovery: every write fails (read-only)"
		f.Fix = "point the driver at the primary"
	}
	return f
}

func (s settings) syncCommitFinding() driver.Finding {
	f := driver.Finding{Check: "synchronous_commit", Message: "synchronous_commit " + s.syncCommit}
	if s.syncCommit == "off" {
		// s is read as the driver's user, so a setting of the role or the URL counts.
		f.Severity = driver.SeverityWarning
		f.Message += ": a crash of the server loses the last commits (up to 3 × wal_writer_delay), locks and Once results included"
		f.Fix = fmt.Sprintf("ALTER ROLE %s SET synchronous_commit = on (or ALTER DATABASE), and check postgresql.conf", s.user)
	}
	return f
}

func (d *Driver) tableFinding(s settings) driver.Finding {
	name := d.table.option()
	f := driver.Finding{Check: "table"}
	switch {
	case s.exists:
		f.Message = fmt.Sprintf("table %s exists", name)
	case d.skipCreate:
		f.Severity = driver.SeverityError
		f.Message = fmt.Sprintf("table %s does not exist and SkipCreateTable is set: every call fails", name)
		f.Fix = fmt.Sprintf("run the DDL of pgcache.Schema(%q, %v) in a migration", name, d.unlogged)
	case !s.canCreateInScope:
		f.Severity = driver.SeverityError
		f.Message = fmt.Sprintf("table %s does not exist and user %s may not create it (no CREATE on the schema): every call fails", name, s.user)
		f.Fix = fmt.Sprintf("GRANT CREATE ON SCHEMA to %s, or create the table from pgcache.Schema(%q, %v)", s.user, name, d.unlogged)
	default:
		f.Message = fmt.Sprintf("table %s does not exist yet: the driver creates it on its first operation", name)
	}
	return f
}

func (d *Driver) ownerFinding(s settings) driver.Finding {
	f := driver.Finding{Check: "owner", Message: fmt.Sprintf("table %s is owned by %s", d.table.option(), s.owner)}
	switch {
	case len(s.missingPrivs) > 0:
		sev := driver.SeverityError
		if len(s.missingPrivs) == 1 && s.missingPrivs[0] == "TRUNCATE" {
			sev = driver.SeverityWarning // only Flush needs it
		}
		f.Severity = sev
		f.Message += fmt.Sprintf("; user %s lacks %s on it, which the driver needs", s.user, strings.Join(s.missingPrivs, ", "))
		f.Fix = fmt.Sprintf("GRANT %s ON %s, %s TO %s", strings.Join(s.missingPrivs, ", "), d.table.quoted(""), d.table.quoted(FenceSuffix), s.user)
	case s.ownerMember:
		f.Message += ", the driver's user " + s.user
	default:
		f.Message += fmt.Sprintf("; user %s has the privileges the driver needs", s.user)
	}
	return f
}

func (d *Driver) unloggedFinding(s settings) driver.Finding {
	f := driver.Finding{Check: "unlogged"}
	name := d.table.option()
	harm := "crash recovery empties it and standbys do not have it: every lock and Once result is lost in a crash or a failover"
	switch {
	case s.exists && s.persistence == "u":
		f.Severity, f.Message = driver.SeverityWarning, fmt.Sprintf("table %s is UNLOGGED: %s", name, harm)
		f.Fix = fmt.Sprintf("ALTER TABLE %s SET LOGGED, or keep locks and Once on a logged table", name)
	case !s.exists && d.unlogged:
		f.Severity, f.Message = driver.SeverityWarning, fmt.Sprintf("table %s will be created UNLOGGED (Options.Unlogged, unlogged=true in a URL): %s", name, harm)
		f.Fix = "turn Options.Unlogged (unlogged=true) off for a cache that holds locks or Once results"
	case s.exists:
		f.Message = fmt.Sprintf("table %s is logged: it survives a crash and reaches the standbys", name)
	default:
		f.Message = fmt.Sprintf("table %s will be created logged", name)
	}
	return f
}
