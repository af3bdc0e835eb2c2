package pgcache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/registry"
)

// TestRegisterParams: importing the package registers postgres:// and postgresql://
// with the registry, and the driver's parameters reach its options: table and unlogged
// decide the table the first write creates, ttl the default TTL.
func TestRegisterParams(t *testing.T) {
	url := pgtest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	bg := context.Background()
	for _, tc := range []struct {
		scheme, table, query string
		persistence          string
		ttl                  time.Duration
	}{
		{"postgres", "registry_param_unlogged", "unlogged=true&ttl=2m&sweep=30s&sweep_batch=10", "u", 2 * time.Minute},
		{"postgresql", "registry_param_logged", "unlogged=false", "p", 0},
	} {
		u := tc.scheme + strings.TrimPrefix(url, strings.SplitN(url, ":", 2)[0]) + sep + "table=" + tc.table + "&" + tc.query
		dd, err := registry.Open(u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		d := dd.(*pgcache.Driver)
		t.Cleanup(func() {
			_ = d.Close()
			exec(t, url, `DROP TABLE IF EXISTS "`+tc.table+`", "`+tc.table+`_fence"`)
		})
		if d.DefaultTTL() != tc.ttl {
			t.Errorf("%s: DefaultTTL %v; want %v", tc.query, d.DefaultTTL(), tc.ttl)
		}
		if err := d.Set(bg, driver.Entry{Key: "k", Value: []byte(`1`)}); err != nil {
			t.Fatal(err)
		}
		var persistence string
		if err := d.Pool().QueryRow(bg, `SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)`, `"`+tc.table+`"`).Scan(&persistence); err != nil || persistence != tc.persistence {
			t.Errorf("%s: relpersistence of %s = %q, %v; want %q", tc.query, tc.table, persistence, err, tc.persistence)
		}
	}
	for _, bad := range []string{"unlogged=maybe", "table=bad-table", "sweep=soon", "sweep_batch=-1"} {
		_, err := registry.Open(url + sep + bad)
		name, _, _ := strings.Cut(bad, "=")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Open(...%s) = %v; want an error naming %s", bad, err, name)
		}
		if strings.HasPrefix(bad, "unlogged") && !errors.Is(err, registry.ErrBadURL) {
			t.Errorf("Open(...%s) = %v; want ErrBadURL", bad, err)
		}
	}
}
