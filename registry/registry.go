// Package registry opens cache drivers from URLs and builds a cache from text
// configuration, in the database/sql manner: typed constructors (memorycache.New, ...)
// come first; this is the convenience layer for configuration files and environment
// variables. docs/configuration.md lists every key with its default.
//
//	d, err := registry.Open("redis://user:pass@10.0.0.5:6379/0?ttl=10m&near=true")
//	c, err := registry.FromEnv() // CACHE_DRIVERS, CACHE_DEFAULT, CACHE_PREFIX, CACHE_METRICS, CACHE_FAIL_OPEN, CACHE_CHECK_ON_START
//
// Built-in schemes, the in-process drivers:
//
//	memory://                 memorycache; ?ttl=5m&sliding=true&max_items=N&max_bytes=N
//	lru://                    lrucache; ?capacity=1000&ttl=5m
//	file:///var/cache/app     filecache; ?ttl=5m&sync=true&sweep=1m
//	null://                   nullcache
//
// The network drivers register their schemes when their package is imported, as
// database/sql's drivers do, so that a program that opens only in-process drivers links
// neither go-redis nor pgx:
//
//	import _ "github.com/cachekit/cache/drivers/rediscache" // redis://, rediss://, unix://, redis+cluster://, rediss+cluster://
//	import _ "github.com/cachekit/cache/drivers/pgcache"    // postgres://, postgresql://
//	import _ "github.com/cachekit/cache/registry/all"       // every driver
//
// Their own parameters are taken out of the URL (Redis: ttl, owns_database, near,
// near_max_entries, near_max_staleness, breaker, breaker_cooldown,
// breaker_probe_timeout, batch, lock_replicas, lock_replicas_timeout; PostgreSQL: ttl,
// table, unlogged, skip_create_table, sweep, sweep_batch) and the rest goes to go-redis
// or pgx. A scheme that nothing registered is an error that names the import to add.
//
// The environment variables, one per field of cache.Config that text can express
// ([Variables] lists them; PrefixFunc and Hooks, code, have none):
//
//	CACHE_DRIVERS    one URL (named "default"), or "name=url;name=url"; the name is the
//	                 driver's in errors, events and metrics (required)
//	CACHE_DEFAULT    the current driver among CACHE_DRIVERS (default: the only one;
//	                 required with several)
//	CACHE_PREFIX     the global key prefix (default: none)
//	CACHE_METRICS    true: count hits, misses, writes, locks and errors and sample
//	                 latencies, for Cache.Metrics and the promcache and otelcache
//	                 adapters (default: false; booleans are true, false, 1 or 0)
//	CACHE_FAIL_OPEN  true: reads go on to the loader when the store cannot be reached
//	                 (cache.Config.FailOpen; default: false)
//	CACHE_CHECK_ON_START  true: the drivers' checks of their stores run once at start,
//	                 each warning and error a finding event (cache.Config.CheckOnStart;
//	                 default: false)
//
// An unset or empty variable leaves its field at its default. A value that does not
// parse, or that the cache refuses, is an error that names the variable, and for a
// driver URL the driver and the parameter at fault.
//
// Durations use [cache.ParseDuration] ("30s", "5m", "1d", "90"). Unknown parameters and
// bad values are errors that name the parameter, and no error ever shows a password.
// [Register] adds schemes for third-party drivers, or replaces one.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/drivers/nullcache"
)

// ErrUnknownScheme: a URL whose scheme no driver registered.
var ErrUnknownScheme = errors.New("registry: unknown scheme")

// ErrBadURL: a URL that does not parse, or has unknown parameters or bad values.
var ErrBadURL = errors.New("registry: bad driver URL")

// Factory opens a driver from a parsed URL. q holds the URL's query parameters; a
// factory must consume every parameter it knows with q.Take (or Bool, Int, Duration)
// and either leave the rest, which Open reports as unknown, or hand them on to another
// parser with q.Rest.
type Factory func(u *url.URL, q *Params) (cache.Driver, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a scheme available to Open, in database/sql's manner: a driver package
// calls it from its init function, so that a program opens the driver's URLs by importing
// the package (import _ "github.com/cachekit/cache/drivers/rediscache"). Schemes are
// case-insensitive.
//
// Unlike sql.Register, Register replaces the factory of a scheme that is already
// registered, built-in ones included: the last call wins. A program that wraps a driver
// registers its scheme again, from main before the first Open, or from an init function
// of a package that imports the driver's package (Go runs the imported package's init
// first). It panics if f is nil or scheme is empty, mistakes that an init function
// cannot report otherwise.
func Register(scheme string, f Factory) {
	if f == nil {
		panic("registry: Register factory is nil")
	}
	if scheme == "" {
		panic("registry: Register scheme is empty")
	}
	mu.Lock()
	defer mu.Unlock()
	factories[strings.ToLower(scheme)] = f
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Sorted(maps.Keys(factories))
}

// imports names the package that registers each scheme of this module's drivers that
// are not built in, for the error of a scheme that no linked package registered.
var imports = map[string]string{
	"redis": rediscachePkg, "rediss": rediscachePkg, "unix": rediscachePkg,
	"redis+cluster": rediscachePkg, "rediss+cluster": rediscachePkg,
	"postgres": pgcachePkg, "postgresql": pgcachePkg,
}

const (
	modulePath    = "github.com/cachekit/cache"
	rediscachePkg = modulePath + "/drivers/rediscache"
	pgcachePkg    = modulePath + "/drivers/pgcache"
	allPkg        = modulePath + "/registry/all"
)

// Open opens the driver a URL names.
func Open(rawURL string) (cache.Driver, error) {
	d, err := open(rawURL)
	if err != nil {
		return nil, fmt.Errorf("registry: open %w", err)
	}
	return d, nil
}

// open is Open with errors that start with the URL (its password hidden), for callers
// that say where the URL came from.
func open(rawURL string) (cache.Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactRaw(rawURL), ErrBadURL)
	}
	f, err := factory(u, rawURL)
	if err != nil {
		return nil, err
	}
	v, err := url.ParseQuery(u.RawQuery) // u.Query() would drop a malformed pair silently
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", shown(u, rawURL), ErrBadURL, err)
	}
	q := &Params{v: v}
	d, err := f(u, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shown(u, rawURL), scrub(err, u))
	}
	if left := q.left(); len(left) > 0 {
		_ = d.Close()
		return nil, fmt.Errorf("%s: %w: unknown %s %s; %s:// takes %s", shown(u, rawURL), ErrBadURL,
			plural(len(left), "parameter"), strings.Join(left, ", "), strings.ToLower(u.Scheme), orNone(q.Known()))
	}
	return d, nil
}

// factory returns the factory of u's scheme, or an error that says which import
// registers it.
func factory(u *url.URL, raw string) (Factory, error) {
	scheme := strings.ToLower(u.Scheme)
	mu.RLock()
	f, ok := factories[scheme]
	mu.RUnlock()
	if ok {
		return f, nil
	}
	hint := ""
	if pkg, ok := imports[scheme]; ok {
		hint = fmt.Sprintf(": its driver registers it when imported: add import _ %q (or _ %q for every driver)", pkg, allPkg)
	}
	return nil, fmt.Errorf("%s: %w %q%s; registered: %s", shown(u, raw), ErrUnknownScheme, u.Scheme, hint, strings.Join(Schemes(), ", "))
}

// shown is u for an error, its password hidden, with the "//" that url.URL drops when
// the host is empty ("memory://?ttl=x", not "memory:?ttl=x").
func shown(u *url.URL, raw string) string {
	s := u.Redacted()
	if u.Host == "" && u.Opaque == "" && strings.Contains(raw, "://") && !strings.Contains(s, "://") {
		s = strings.Replace(s, ":", "://", 1)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "no parameters"
	}
	return strings.Join(names, ", ")
}

// Params are a URL's query parameters, taken one by one.
type Params struct {
	v     url.Values
	known []string // every name asked for
	errs  []error
}

// Take removes the parameter name and returns its value ("" if absent).
func (p *Params) Take(name string) string {
	if !slices.Contains(p.known, name) {
		p.known = append(p.known, name)
	}
	s := p.v.Get(name)
	p.v.Del(name)
	return s
}

// Duration takes a duration parameter (cache.ParseDuration forms).
func (p *Params) Duration(name string) time.Duration {
	s := p.Take(name)
	if s == "" {
		return 0
	}
	d, err := cache.ParseDuration(s)
	if err != nil {
		p.Fail(name, fmt.Errorf("%q is not a duration (30s, 5m, 1h30m, 1d, 90): %w", s, err))
	}
	return d
}

// Int takes a non-negative integer parameter.
func (p *Params) Int(name string) int {
	s := p.Take(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		p.Fail(name, fmt.Errorf("%q is not a non-negative integer", s))
	}
	return n
}

// Bool takes a boolean parameter (true, false, 1, 0); absent, it is false.
func (p *Params) Bool(name string) bool { return p.BoolOr(name, false) }

// BoolOr takes a boolean parameter (true, false, 1, 0); absent, it is def.
func (p *Params) BoolOr(name string, def bool) bool {
	s := p.Take(name)
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.Fail(name, fmt.Errorf("%q is not a boolean: use true or false (or 1, 0)", s))
	}
	return b
}

// Fail records that the parameter name is wrong, for a check a factory makes itself
// (a value out of range, a parameter that needs another); Err reports it.
func (p *Params) Fail(name string, err error) {
	p.errs = append(p.errs, fmt.Errorf("parameter %s: %w", name, err))
}

// Err returns the errors of the values taken so far, naming each parameter; it matches
// [ErrBadURL].
func (p *Params) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	err := errors.Join(p.errs...)
	return &configError{msg: strings.ReplaceAll(err.Error(), "\n", "; "), errs: []error{ErrBadURL, err}}
}

// Known returns the names of the parameters taken so far (those the factory knows),
// sorted.
func (p *Params) Known() []string { return slices.Sorted(slices.Values(p.known)) }

func (p *Params) left() []string { return slices.Sorted(maps.Keys(p.v)) }

// Rest returns u with only the parameters not taken, and hands those on: Open no longer
// reports them as unknown, the parser u goes to (go-redis, pgx) checks them.
func (p *Params) Rest(u *url.URL) string {
	rest := *u
	rest.RawQuery = p.v.Encode()
	p.v = url.Values{}
	return rest.String()
}

// builtIns are the schemes of the in-process drivers, registered by the registry itself;
// the other drivers register theirs when imported.
var builtIns = map[string]Factory{
	"memory": func(_ *url.URL, q *Params) (cache.Driver, error) {
		o := memorycache.Options{DefaultTTL: q.Duration("ttl"), Sliding: q.Bool("sliding"), MaxItems: q.Int("max_items"), MaxBytes: int64(q.Int("max_bytes"))}
		if err := q.Err(); err != nil {
			return nil, err
		}
		return memorycache.New(o)
	},
	"lru": func(_ *url.URL, q *Params) (cache.Driver, error) {
		o := lrucache.Options{Capacity: q.Int("capacity"), DefaultTTL: q.Duration("ttl")}
		if err := q.Err(); err != nil {
			return nil, err
		}
		return lrucache.New(o)
	},
	"null": func(*url.URL, *Params) (cache.Driver, error) { return nullcache.New(nullcache.Options{}) },
	"file": openFile,
}

func init() {
	for s, f := range builtIns {
		Register(s, f)
	}
}

func openFile(u *url.URL, q *Params) (cache.Driver, error) {
	dir := u.Path
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w: file URLs name a local directory (file:///path), not host %q", ErrBadURL, u.Host)
	}
	if dir == "" {
		dir = u.Opaque // file:relative/dir
	}
	o := filecache.Options{Dir: dir, DefaultTTL: q.Duration("ttl"), Sync: q.Bool("sync"), SweepInterval: q.Duration("sweep")}
	if err := q.Err(); err != nil {
		return nil, err
	}
	return filecache.New(o)
}

// Config is a cache described in text: driver URLs by name, and the rest of the cache's
// configuration.
type Config struct {
	// Drivers maps driver names to URLs.
	Drivers map[string]string
	// Cache is the rest of the configuration, as cache.New takes it: Default, Prefix,
	// Metrics, PrefixFunc, ... Its Drivers must be empty: New fills them with the
	// drivers it opens.
	Cache cache.Config
}

// New opens every driver of cfg and builds the cache. On an error, the drivers opened so
// far are closed.
func New(cfg Config) (*cache.Cache, error) { return build(cfg, "") }

// build is New; source, when not empty, is where cfg.Drivers came from (CACHE_DRIVERS),
// named first in the error of a driver that does not open.
func build(cfg Config, source string) (*cache.Cache, error) {
	if len(cfg.Cache.Drivers) > 0 {
		return nil, fmt.Errorf("%w: registry.Config.Cache.Drivers must be empty: give the drivers' URLs in Config.Drivers", cache.ErrInvalidConfig)
	}
	drivers := make(map[string]cache.Driver, len(cfg.Drivers))
	closeAll := func() {
		for _, d := range drivers {
			_ = d.Close()
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Drivers)) {
		d, err := open(cfg.Drivers[name])
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("registry: %sdriver %q: %w", source, name, err)
		}
		drivers[name] = d
	}
	cc := cfg.Cache
	cc.Drivers = drivers
	c, err := cache.New(cc)
	if err != nil {
		closeAll()
		return nil, err
	}
	return c, nil
}

// ParseDrivers reads "name=url;name=url" (also separated by newlines). A value without
// "name=" is named "default".
func ParseDrivers(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok || strings.Contains(name, ":") {
			name, u = "default", part
		}
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: driver %q is named twice", ErrBadURL, name)
		}
		out[name] = u
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no drivers", ErrBadURL)
	}
	return out, nil
}

// ErrBadConfig: an environment variable whose value does not parse or that the cache
// refuses (CACHE_METRICS=yes, a CACHE_DEFAULT that names no driver, a CACHE_PREFIX with
// a dot).
var ErrBadConfig = errors.New("registry: bad configuration")

// DriversVar is the variable that lists the drivers: one URL, or "name=url;name=url".
const DriversVar = "CACHE_DRIVERS"

// setting is one line of the table from text to cache.Config: the variable, and the
// field it sets.
type setting struct {
	env string
	// field returns a pointer to the field of c the variable sets: *string, *bool,
	// *int or *time.Duration.
	field func(c *cache.Config) any
	doc   string
}

// settings maps every cache.Config field that text can express to its environment
// variable. A new field of cache.Config is one line here: the registry's tests fail
// until it has one (or is listed there as something text cannot express, like
// PrefixFunc). The value's parsing follows the field's type.
var settings = []setting{
	{"CACHE_DEFAULT", func(c *cache.Config) any { return &c.Default }, "the current driver, one of " + DriversVar + "'s names (may be unset with one driver)"},
	{"CACHE_PREFIX", func(c *cache.Config) any { return &c.Prefix }, "the global key prefix (default: none)"},
	{"CACHE_METRICS", func(c *cache.Config) any { return &c.Metrics }, "true to count hits, misses, writes, locks and errors and sample latencies, for Cache.Metrics, promcache and otelcache (default: false)"},
	{"CACHE_FAIL_OPEN", func(c *cache.Config) any { return &c.FailOpen }, "true to let reads (Get, Remember, SWR) go on to the loader when the store cannot be reached; locks and writes never do (default: false)"},
	{"CACHE_CHECK_ON_START", func(c *cache.Config) any { return &c.CheckOnStart }, "true to run the drivers' checks of their stores once at start (those of cachectl doctor), each warning and error a finding event (default: false)"},
}

// Variable is an environment variable that [FromEnv] reads.
type Variable struct {
	// Name is the variable: "CACHE_PREFIX".
	Name string
	// Field is the cache.Config field it sets ("Prefix"), or "Drivers" for
	// CACHE_DRIVERS, whose URLs are opened into Config.Drivers.
	Field string
	// Type is how its value is read: "drivers", "string", "bool" (true, false, 1 or
	// 0), "int" or "duration" (cache.ParseDuration's forms).
	Type string
	// Doc says what it does, in a line.
	Doc string
}

// Variables returns every variable FromEnv reads, CACHE_DRIVERS first.
func Variables() []Variable {
	out := []Variable{{Name: DriversVar, Field: "Drivers", Type: "drivers", Doc: `the drivers: one URL ("redis://127.0.0.1:6379/0", named "default"), or "name=url;name=url", the name shown in errors, events and metrics`}}
	for _, s := range settings {
		out = append(out, Variable{Name: s.env, Field: s.fieldName(), Type: s.kind(), Doc: s.doc})
	}
	return out
}

// fieldName is the name of the cache.Config field s sets, found by its address.
func (s setting) fieldName() string {
	var c cache.Config
	p := reflect.ValueOf(s.field(&c)).Pointer()
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if v.Field(i).Addr().Pointer() == p && v.Field(i).Addr().Type() == reflect.TypeOf(s.field(&c)) {
			return v.Type().Field(i).Name
		}
	}
	return ""
}

func (s setting) kind() string {
	switch s.field(new(cache.Config)).(type) {
	case *string:
		return "string"
	case *bool:
		return "bool"
	case *int:
		return "int"
	case *time.Duration:
		return "duration"
	}
	return "unsupported"
}

// set parses raw into s's field of c.
func (s setting) set(c *cache.Config, raw string) error {
	raw = strings.TrimSpace(raw)
	switch p := s.field(c).(type) {
	case *string:
		*p = raw
	case *bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%s=%q is not a boolean: use true or false (or 1, 0)", s.env, raw)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%s=%q is not an integer", s.env, raw)
		}
		*p = n
	case *time.Duration:
		d, err := cache.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%s=%q is not a duration (30s, 5m, 1h30m, 1d, 90): %w", s.env, raw, err)
		}
		*p = d
	default:
		return fmt.Errorf("%s: the registry cannot read a %T from text", s.env, p)
	}
	return nil
}

// check reports whether the cache accepts s's field as set in c, on its own: it builds
// a cache on a null driver with that field alone, so that the cache's own rules decide
// (a prefix with a dot, ...) before any driver is opened. CACHE_DEFAULT, which depends
// on the drivers, is checked by checkDefault.
func (s setting) check(c *cache.Config) error {
	var probe cache.Config
	reflect.ValueOf(s.field(&probe)).Elem().Set(reflect.ValueOf(s.field(c)).Elem())
	null, _ := nullcache.New(nullcache.Options{})
	probe.Drivers = map[string]cache.Driver{"default": null}
	probe.Default = ""
	pc, err := cache.New(probe)
	if err != nil {
		return err
	}
	return pc.Close()
}

// ConfigFromEnv reads a Config from the environment; see [ConfigFromLookup].
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.LookupEnv) }

// ConfigFromLookup reads a Config from variables: CACHE_DRIVERS (see [ParseDrivers]),
// and one variable per cache.Config field that text can express (see [Variables]):
// CACHE_DEFAULT, CACHE_PREFIX, CACHE_METRICS, CACHE_FAIL_OPEN, CACHE_CHECK_ON_START. A
// variable that is unset or empty leaves its field at its default; a value that does
// not parse is an error that names the variable and matches [ErrBadConfig]. It opens
// nothing: the values the cache would refuse, and the driver URLs that do not open, are
// reported by [FromLookup] and [New].
func ConfigFromLookup(lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	raw, ok := lookup(DriversVar)
	if !ok || strings.TrimSpace(raw) == "" {
		return cfg, fmt.Errorf("%w: %s is not set", ErrBadURL, DriversVar)
	}
	drivers, err := ParseDrivers(raw)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", DriversVar, err)
	}
	cfg.Drivers = drivers
	var errs []error
	for _, s := range settings {
		if v, ok := lookup(s.env); ok && strings.TrimSpace(v) != "" {
			if err := s.set(&cfg.Cache, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("%w: %w", ErrBadConfig, errors.Join(errs...))
	}
	return cfg, nil
}

// FromEnv builds a cache from the environment:
//
//	CACHE_DRIVERS    the drivers: one URL ("redis://127.0.0.1:6379/0", named "default")
//	                 or "name=url;name=url" (see [ParseDrivers]); required
//	CACHE_DEFAULT    the current driver (default: the only one; required with several)
//	CACHE_PREFIX     the global key prefix (default: none)
//	CACHE_METRICS    true, false, 1 or 0: metrics for Cache.Metrics, promcache and
//	                 otelcache (default: false)
//	CACHE_FAIL_OPEN  true, false, 1 or 0: reads go on to the loader when the store
//	                 cannot be reached (default: false)
//	CACHE_CHECK_ON_START  true, false, 1 or 0: the drivers' checks of their stores run
//	                 once at start, each warning and error a finding event (default: false)
//
// The URL parameters of each scheme are in the package doc and docs/configuration.md; a
// network driver's scheme needs its package imported (or registry/all). Errors name the
// variable at fault, and for a driver URL the driver and the parameter.
func FromEnv() (*cache.Cache, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv with another source of variables.
func FromLookup(lookup func(string) (string, bool)) (*cache.Cache, error) {
	cfg, err := ConfigFromLookup(lookup)
	if err != nil {
		return nil, err
	}
	if err := Check(cfg, nil); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return build(cfg, DriversVar+": ")
}

// Check reports what cache.New would refuse in cfg, before any driver is opened, naming
// where each value came from: name maps a cache.Config field ("Default", "Prefix") to
// its source (a command-line tool's "--prefix"); when name is nil or returns "", the
// field's environment variable (CACHE_PREFIX) is named. The cache's own rules decide: a
// field is checked by building a cache on a null driver with that field alone. The
// error matches [ErrBadConfig], and the cache's error ([cache.ErrInvalidConfig]) when it
// comes from there.
func Check(cfg Config, name func(field string) string) error {
	source := func(s setting) string {
		if name != nil {
			if n := name(s.fieldName()); n != "" {
				return n
			}
		}
		return s.env
	}
	names := slices.Sorted(maps.Keys(cfg.Drivers))
	for _, s := range settings {
		if s.env == "CACHE_DEFAULT" {
			def := cfg.Cache.Default
			switch {
			case def == "" && len(names) > 1:
				return fmt.Errorf("%w: %s names %d drivers (%s): set %s to the one to use", ErrBadConfig, DriversVar, len(names), strings.Join(names, ", "), source(s))
			case def != "" && !slices.Contains(names, def):
				return fmt.Errorf("%w: %s %q is not one of the drivers (%s)", ErrBadConfig, source(s), def, strings.Join(names, ", "))
			}
			continue
		}
		v := reflect.ValueOf(s.field(&cfg.Cache)).Elem()
		if v.IsZero() { // the default, which the cache accepts
			continue
		}
		if err := s.check(&cfg.Cache); err != nil {
			return &configError{
				msg:  fmt.Sprintf("%s %s: %s", source(s), show(v), reason(err)),
				errs: []error{ErrBadConfig, err},
			}
		}
	}
	return nil
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return strconv.Quote(v.String())
	}
	return fmt.Sprint(v.Interface())
}

// reason is the cause of an error from cache.New, without the Go field name that
// cache.New puts before it ("cache: invalid config: Prefix \"a.b\": the prefix ..."
// gives "the prefix ..."), for a message that names the variable or flag instead.
func reason(err error) string {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 1 {
			return errs[len(errs)-1].Error()
		}
	}
	return err.Error()
}

// configError is an error whose message names the variable or parameter at fault;
// errors.Is sees its errs (ErrBadConfig and the cache's own error, or ErrBadURL and the
// parameters' errors).
type configError struct {
	msg  string
	errs []error
}

func (e *configError) Error() string   { return e.msg }
func (e *configError) Unwrap() []error { return e.errs }

// scrub removes the URL's password from an error message a driver built.
func scrub(err error, u *url.URL) error {
	if u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}

// redacted is an error whose message had a password removed; errors.Is still sees the
// original.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// redactRaw hides what looks like a password in a URL that did not parse.
func redactRaw(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return s[:i+3] + rest[:c] + ":xxxxx" + rest[at:]
			}
		}
	}
	return s
}
