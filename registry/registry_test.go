package registry_test

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/drivers/nullcache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/registry"
	_ "github.com/cachekit/cache/registry/all"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopAll()
	pgtest.StopAll()
	os.Exit(code)
}

func open(t *testing.T, u string) driver.Driver {
	t.Helper()
	d, err := registry.Open(u)
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestOpenSchemes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		url  string
		ok   func(driver.Driver) bool
		ttl  time.Duration
		desc string
	}{
		{"memory://", func(d driver.Driver) bool { _, ok := d.(*memorycache.Driver); return ok }, 0, "memory"},
		{"memory://?ttl=10m&sliding=true&max_items=100", func(d driver.Driver) bool { _, ok := d.(*memorycache.Driver); return ok }, 10 * time.Minute, "memoryExtended"},
		{"lru://?capacity=10&ttl=1d", func(d driver.Driver) bool { _, ok := d.(*lrucache.Driver); return ok }, 24 * time.Hour, "lru"},
		{"null://", func(d driver.Driver) bool { _, ok := d.(*nullcache.Driver); return ok }, 0, "null"},
		{"file://" + dir + "?ttl=90&sync=true", func(d driver.Driver) bool { _, ok := d.(*filecache.Driver); return ok }, 90 * time.Second, "file"},
		{redistest.URL(t) + withParam(redistest.URL(t), "ttl=5m"), func(d driver.Driver) bool { _, ok := d.(*rediscache.Driver); return ok }, 5 * time.Minute, "redis"},
		{pgtest.URL(t) + withParam(pgtest.URL(t), "ttl=2m&table=registry_entries&unlogged=true&sweep=30s"), func(d driver.Driver) bool { _, ok := d.(*pgcache.Driver); return ok }, 2 * time.Minute, "postgres"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			d := open(t, tc.url)
			if !tc.ok(d) {
				t.Fatalf("Open(%q) = %T", tc.url, d)
			}
			if dt, ok := d.(driver.DefaultTTLer); ok && dt.DefaultTTL() != tc.ttl {
				t.Fatalf("DefaultTTL = %v; want %v", dt.DefaultTTL(), tc.ttl)
			}
		})
	}
}

func withParam(u, p string) string {
	if strings.Contains(u, "?") {
		return "&" + p
	}
	return "?" + p
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want error
	}{
		{"memcached://127.0.0.1:11211", registry.ErrUnknownScheme},
		{"memory://?bogus=1", registry.ErrBadURL},
		{"memory://?ttl=forever", registry.ErrBadURL},
		{"lru://?capacity=-1", registry.ErrBadURL},
		{"memory://?sliding=perhaps", registry.ErrBadURL},
		{"file://otherhost/var/cache", registry.ErrBadURL},
		{"%%%", registry.ErrBadURL},
	} {
		if _, err := registry.Open(tc.url); !errors.Is(err, tc.want) {
			t.Errorf("Open(%q) = %v; want %v", tc.url, err, tc.want)
		}
	}
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:s3cret-pw@127.0.0.1:1/0?bogus=1",
		"redis://user:s3cret-pw@127.0.0.1:1/notanumber",
		"redis://user:s3cret-pw@[::1/0",
		"memory://user:s3cret-pw@x?nope=1",
		"nosuch://user:s3cret-pw@host",
		"postgres://user:s3cret-pw@127.0.0.1:1/db?ttl=notaduration",
		"postgres://user:s3cret-pw@127.0.0.1:1/db?table=bad;table",
		"postgres://user:s3cret-pw@127.0.0.1:1/db?table=bad-table",
		"memory://?ttl=5m;sliding=true",
		"postgresql://user:s3cret-pw@127.0.0.1:1/db?pool_max_conns=x",
	} {
		_, err := registry.Open(u)
		if err == nil {
			t.Errorf("Open(%q) = nil error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

func TestFromLookup(t *testing.T) {
	env := map[string]string{
		"CACHE_DRIVERS": "main=" + redistest.URL(t) + "; local=memory://?ttl=1m\nnull=null://",
		"CACHE_DEFAULT": "local",
		"CACHE_PREFIX":  "svc",
	}
	c, err := registry.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Drivers(); strings.Join(got, ",") != "local,main,null" || c.Current() != "local" {
		t.Fatalf("drivers %v current %q", got, c.Current())
	}
	ctx := context.Background()
	main, _ := c.Driver("main")
	if err := main.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, err := main.Get(ctx, "k", &s); !found || err != nil || s != "v" {
		t.Fatal(found, err, s)
	}
	_ = main.Remove(ctx, "k")
	// One URL alone is the default driver.
	c2, err := registry.FromLookup(func(k string) (string, bool) {
		if k == "CACHE_DRIVERS" {
			return "memory://", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Current() != "default" {
		t.Fatalf("Current() = %q", c2.Current())
	}
	if _, err := registry.FromLookup(func(string) (string, bool) { return "", false }); !errors.Is(err, registry.ErrBadURL) {
		t.Fatalf("no CACHE_DRIVERS = %v", err)
	}
	if _, err := registry.New(registry.Config{Drivers: map[string]string{"a": "memory://", "b": "nope://"}}); !errors.Is(err, registry.ErrUnknownScheme) {
		t.Fatalf("a bad driver = %v", err)
	}
}

// TestCheckOnStartFromEnv: CACHE_CHECK_ON_START=true runs the drivers' checks at start;
// a subscription made after FromLookup returned gets their findings (an evicting
// maxmemory-policy here) as events.
func TestCheckOnStartFromEnv(t *testing.T) {
	srv := redistest.StartWith(t, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	env := map[string]string{"CACHE_DRIVERS": "redis=" + srv.URL(), "CACHE_CHECK_ON_START": "true"}
	c, err := registry.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan cache.Event, 64)
	defer c.Subscribe(0, func(e cache.Event) { got <- e }, cache.EventFinding)()
	timeout := time.After(time.Minute) // a hang detector
	for {
		select {
		case e := <-got:
			var f driver.Finding
			if !errors.As(e.Err, &f) || e.Driver != "redis" {
				t.Fatalf("finding event %+v", e)
			}
			if e.Key == "maxmemory-policy" {
				return
			}
		case <-timeout:
			t.Fatal("no maxmemory-policy finding within a minute")
		}
	}
}

// TestRegister: Register replaces the factory of a scheme already registered; the last
// call wins, and schemes are case-insensitive.
func TestRegister(t *testing.T) {
	var calls []string
	factory := func(name string) registry.Factory {
		return func(*url.URL, *registry.Params) (cache.Driver, error) {
			calls = append(calls, name)
			return nullcache.New(nullcache.Options{})
		}
	}
	registry.Register("test-null", factory("first"))
	open(t, "test-null://")
	registry.Register("TEST-null", factory("second"))
	open(t, "Test-Null://")
	if strings.Join(calls, ",") != "first,second" {
		t.Fatalf("factories called: %v; want first, then second (the replacement)", calls)
	}
	for _, bad := range []func(){
		func() { registry.Register("test-nil", nil) },
		func() { registry.Register("", factory("x")) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Register with a nil factory or an empty scheme did not panic")
				}
			}()
			bad()
		}()
	}
}

// TestRegisteredByImport: the Redis and PostgreSQL schemes are registered by their
// driver packages, which this test imports (through registry/all).
func TestRegisteredByImport(t *testing.T) {
	for _, s := range []string{"redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "postgres", "postgresql", "memory", "lru", "file", "null"} {
		if !slices.Contains(registry.Schemes(), s) {
			t.Errorf("scheme %s is not registered (%v)", s, registry.Schemes())
		}
	}
}

// TestRegistryLinksNoNetworkDriver: a program that imports the registry alone links
// neither go-redis nor pgx; the in-process drivers are built in.
func TestRegistryLinksNoNetworkDriver(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, heavy := range []string{"github.com/redis/go-redis/v9", "github.com/jackc/pgx/v5", "golang.org/x/text", "/drivers/rediscache", "/drivers/pgcache"} {
		for _, d := range deps {
			if strings.Contains(d, heavy) {
				t.Errorf("the registry links %s", d)
			}
		}
	}
	if !slices.Contains(deps, "github.com/cachekit/cache/drivers/memorycache") {
		t.Errorf("the registry does not link memorycache: %v", deps)
	}
}

// TestNearFromURL: near=true in the URL builds a near-cached Redis driver: 10,000 reads
// of a key it holds send at most 1% GETs to Redis.
func TestNearFromURL(t *testing.T) {
	srv := redistest.Start(t)
	// A staleness bound of 1 s keeps a busy machine's late pong from sending reads on.
	c := fromURL(t, srv.URL()+"?near=true&near_max_staleness=1s")
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0); err != nil {
		t.Fatal(err)
	}
	// The first reads go to Redis until the tracking connection confirms: read until 100
	// reads in a row send no GET (a one-minute bound is a hang detector).
	deadline := time.Now().Add(time.Minute)
	for quiet := 0; quiet < 100; {
		before := srv.Calls(t, "get")
		readK(t, c)
		if srv.Calls(t, "get") == before {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			t.Fatal("the near cache never took the reads over (hang detector: 1 minute)")
		}
	}
	before := srv.Calls(t, "get")
	const reads = 10_000
	for range reads {
		readK(t, c)
	}
	n := srv.Calls(t, "get") - before
	t.Logf("%d reads with near=true sent %d GETs to Redis", reads, n)
	if n > reads/100 {
		t.Errorf("%d reads with near=true sent %d GETs to Redis; want at most %d", reads, n, reads/100)
	}
	// Without near, every read is a GET.
	plainC := fromURL(t, srv.URL())
	before = srv.Calls(t, "get")
	for range 100 {
		readK(t, plainC)
	}
	if n := srv.Calls(t, "get") - before; n != 100 {
		t.Errorf("100 reads without near sent %d GETs; want 100", n)
	}
}

func fromURL(t *testing.T, u string) *cache.Cache {
	t.Helper()
	c, err := registry.New(registry.Config{Drivers: map[string]string{"redis": u}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readK(t *testing.T, c *cache.Cache) {
	t.Helper()
	if v, ok, err := cache.GetAs[string](context.Background(), c, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("GetAs(k) = %q, %v, %v; want v", v, ok, err)
	}
}

// TestEnvErrorsNameVariableAndParameter: a driver URL that does not open is an error
// that names CACHE_DRIVERS, the driver and the parameter at fault; an unknown parameter
// is named, with the parameters the scheme takes.
func TestEnvErrorsNameVariableAndParameter(t *testing.T) {
	for _, tc := range []struct {
		drivers string
		want    []string
		is      error
	}{
		{"redis://127.0.0.1:1/0?near=bogus", []string{"CACHE_DRIVERS", `driver "default"`, "parameter near", `"bogus"`}, registry.ErrBadURL},
		{"sessions=redis://127.0.0.1:1/0?lock_replicas=x", []string{"CACHE_DRIVERS", `driver "sessions"`, "parameter lock_replicas"}, registry.ErrBadURL},
		{"memory://?ttl=5m&bogus=1", []string{"CACHE_DRIVERS", "unknown parameter bogus", "memory:// takes max_bytes, max_items, sliding, ttl"}, registry.ErrBadURL},
		{"pg=postgres://127.0.0.1:1/db?unlogged=maybe", []string{"CACHE_DRIVERS", `driver "pg"`, "parameter unlogged"}, registry.ErrBadURL},
		{"memcached://127.0.0.1:11211", []string{"CACHE_DRIVERS", `unknown scheme "memcached"`, "registered: "}, registry.ErrUnknownScheme},
	} {
		_, err := registry.FromLookup(lookup(map[string]string{"CACHE_DRIVERS": tc.drivers}))
		if !errors.Is(err, tc.is) {
			t.Errorf("CACHE_DRIVERS=%s: %v; want %v", tc.drivers, err, tc.is)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CACHE_DRIVERS=%s: %q; want it to contain %q", tc.drivers, err, w)
			}
		}
	}
}

// TestDriverNameFromConfig: the name CACHE_DRIVERS gives a driver (name=url) is the one
// the cache's metrics and errors show.
func TestDriverNameFromConfig(t *testing.T) {
	c, err := registry.FromLookup(lookup(map[string]string{
		"CACHE_DRIVERS": "sessions=memory://;down=redis://127.0.0.1:1/0?max_retries=0",
		"CACHE_DEFAULT": "sessions", "CACHE_METRICS": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	_, _ = c.Get(ctx, "k", new(string))
	if m := c.Metrics().Drivers["sessions"]; m.Misses != 1 {
		t.Errorf("metrics by driver %v; want one miss for \"sessions\"", c.Metrics().Drivers)
	}
	down, _ := c.Driver("down")
	_, err = down.Get(ctx, "k", new(string))
	var ce *cache.Error
	if !errors.As(err, &ce) || ce.Driver != "down" || !strings.Contains(err.Error(), `(driver "down")`) {
		t.Errorf("Get on a Redis that cannot be reached = %v; want an error naming driver \"down\"", err)
	}
}

// textless are the cache.Config fields that no text can express, with the reason. Every
// other field must have a variable in the registry's settings table.
var textless = map[string]string{
	"Drivers":    "opened from the URLs of CACHE_DRIVERS",
	"PrefixFunc": "a function",
	"Hooks":      "code that observes the operations",
}

// TestSettingsCoverConfig: every field of cache.Config is reachable from text, so that
// FromEnv can build any cache that cache.New can. A field added to cache.Config fails
// here until registry's settings table has its line.
func TestSettingsCoverConfig(t *testing.T) {
	byField := map[string]registry.Variable{}
	for _, v := range registry.Variables() {
		if v.Field == "" || v.Type == "unsupported" {
			t.Errorf("variable %s: field %q, type %q: the settings table points at a field it cannot read", v.Name, v.Field, v.Type)
		}
		if !strings.HasPrefix(v.Name, "CACHE_") || v.Doc == "" {
			t.Errorf("variable %+v: want a CACHE_ name and a doc line", v)
		}
		if _, dup := byField[v.Field]; dup {
			t.Errorf("field %s has two variables", v.Field)
		}
		byField[v.Field] = v
	}
	typ := reflect.TypeFor[cache.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		_, text := byField[f.Name]
		_, none := textless[f.Name]
		switch {
		case f.Name == "Drivers" && byField["Drivers"].Name != registry.DriversVar:
			t.Errorf("Drivers: want %s", registry.DriversVar)
		case !text && !none:
			t.Errorf("cache.Config.%s (%s) has no environment variable: add a line to registry's settings table, or list it in textless if text cannot express it", f.Name, f.Type)
		case text && none && f.Name != "Drivers":
			t.Errorf("cache.Config.%s is both in the table and in textless", f.Name)
		}
	}
	// The package doc lists every variable.
	src, err := os.ReadFile("registry.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(src), "\npackage registry")
	for _, v := range registry.Variables() {
		if !strings.Contains(doc, "//\t"+v.Name+" ") {
			t.Errorf("the package doc's list of variables lacks %s", v.Name)
		}
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestFromLookupSettings(t *testing.T) {
	for _, tc := range []struct {
		metrics string // "-": unset
		on      bool
	}{{"-", false}, {"", false}, {"true", true}, {"1", true}, {"TRUE", true}, {"false", false}, {"0", false}, {" true ", true}} {
		env := map[string]string{"CACHE_DRIVERS": "memory://", "CACHE_PREFIX": "svc"}
		if tc.metrics != "-" {
			env["CACHE_METRICS"] = tc.metrics
		}
		c, err := registry.FromLookup(lookup(env))
		if err != nil {
			t.Fatalf("CACHE_METRICS=%q: %v", tc.metrics, err)
		}
		ctx := context.Background()
		_, _ = c.Get(ctx, "k", new(string))
		m := c.Metrics()
		if on := !m.Since.IsZero(); on != tc.on || (tc.on && m.Misses != 1) {
			t.Errorf("CACHE_METRICS=%q: metrics on %v (misses %d); want %v", tc.metrics, on, m.Misses, tc.on)
		}
		if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}

	// Bad values: errors that name the variable, never a Go field.
	for _, tc := range []struct {
		env  map[string]string
		want []string
		is   []error
	}{
		{map[string]string{"CACHE_METRICS": "yes"}, []string{"CACHE_METRICS", `"yes"`, "true or false"}, []error{registry.ErrBadConfig}},
		{map[string]string{"CACHE_METRICS": "on"}, []string{"CACHE_METRICS"}, []error{registry.ErrBadConfig}},
		{map[string]string{"CACHE_DEFAULT": "nope"}, []string{"CACHE_DEFAULT", `"nope"`, "a, b"}, []error{registry.ErrBadConfig}},
		{map[string]string{"CACHE_DRIVERS": "a=memory://;b=memory://"}, []string{"CACHE_DRIVERS", "2 drivers", "set CACHE_DEFAULT"}, []error{registry.ErrBadConfig}},
		{map[string]string{"CACHE_DEFAULT": "a", "CACHE_PREFIX": "acme.eu"}, []string{"CACHE_PREFIX", `"acme.eu"`, "separator"}, []error{registry.ErrBadConfig, cache.ErrInvalidConfig}},
		{map[string]string{"CACHE_DEFAULT": "a", "CACHE_PREFIX": "a|b"}, []string{"CACHE_PREFIX", `"a|b"`}, []error{registry.ErrBadConfig, cache.ErrInvalidConfig}},
	} {
		env := map[string]string{"CACHE_DRIVERS": "a=memory://;b=memory://"}
		maps.Copy(env, tc.env)
		c, err := registry.FromLookup(lookup(env))
		if err == nil {
			_ = c.Close()
			t.Errorf("%v: no error", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q; want it to contain %q", tc.env, err, w)
			}
		}
		for _, goName := range []string{"Default ", "Prefix ", "Metrics"} {
			if strings.Contains(err.Error(), goName) {
				t.Errorf("%v: error %q names the Go field %q", tc.env, err, goName)
			}
		}
		for _, target := range tc.is {
			if !errors.Is(err, target) {
				t.Errorf("%v: error %v does not match %v", tc.env, err, target)
			}
		}
	}
}

func TestConfigFromLookupAndCheck(t *testing.T) {
	cfg, err := registry.ConfigFromLookup(lookup(map[string]string{
		"CACHE_DRIVERS": "main=memory://; local=memory://", "CACHE_DEFAULT": " local ", "CACHE_PREFIX": "svc", "CACHE_METRICS": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Drivers) != 2 || cfg.Cache.Default != "local" || cfg.Cache.Prefix != "svc" || !cfg.Cache.Metrics || cfg.Cache.Drivers != nil {
		t.Fatalf("ConfigFromLookup = %+v", cfg)
	}
	if err := registry.Check(cfg, nil); err != nil {
		t.Fatal(err)
	}
	// A tool names its own flags.
	flags := func(field string) string {
		return map[string]string{"Prefix": "--prefix", "Default": "--driver"}[field]
	}
	cfg.Cache.Prefix = "a.b"
	if err := registry.Check(cfg, flags); err == nil || !strings.HasPrefix(err.Error(), `--prefix "a.b": `) {
		t.Errorf("Check of a bad prefix = %v; want it to start with --prefix", err)
	}
	cfg.Cache.Prefix, cfg.Cache.Default = "", "other"
	if err := registry.Check(cfg, flags); err == nil || !strings.Contains(err.Error(), `--driver "other" is not one of the drivers (local, main)`) {
		t.Errorf("Check of a bad default = %v", err)
	}
	// registry.New takes every cache.Config field, and refuses drivers given twice.
	c, err := registry.New(registry.Config{Drivers: map[string]string{"m": "memory://"}, Cache: cache.Config{Metrics: true, Prefix: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics().Since.IsZero() {
		t.Error("registry.New with Cache.Metrics: metrics off")
	}
	_ = c.Close()
	mem, _ := memorycache.New(memorycache.Options{})
	defer mem.Close()
	if _, err := registry.New(registry.Config{Drivers: map[string]string{"m": "memory://"}, Cache: cache.Config{Drivers: map[string]cache.Driver{"x": mem}}}); !errors.Is(err, cache.ErrInvalidConfig) {
		t.Errorf("New with Cache.Drivers = %v; want ErrInvalidConfig", err)
	}
}

// ConfigFromEnv reads the same variables as FromEnv, so that a program can add what text
// cannot express (Hooks, PrefixFunc) before New.
func TestConfigFromEnv(t *testing.T) {
	t.Setenv("CACHE_DRIVERS", "memory://")
	t.Setenv("CACHE_PREFIX", "app")
	t.Setenv("CACHE_METRICS", "true")
	cfg, err := registry.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Drivers["default"] != "memory://" || cfg.Cache.Prefix != "app" || !cfg.Cache.Metrics {
		t.Fatalf("ConfigFromEnv = %+v", cfg)
	}
	t.Setenv("CACHE_METRICS", "yes")
	if _, err := registry.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "CACHE_METRICS") {
		t.Fatalf("CACHE_METRICS=yes: %v; want an error naming the variable", err)
	}
}
