// Package registry opens cache drivers from URLs and builds a cache from text
// configuration, in the database/sql manner: typed constructors (memorycache.New, ...)
// come first; this is the convenience layer for configuration files and environment
// variables.
//
//	d, err := registry.Open("redis://user:pass@10.0.0.5:6379/0?ttl=10m")
//	c, err := registry.FromEnv() // CACHE_DRIVERS, CACHE_DEFAULT, CACHE_PREFIX
//
// Built-in schemes:
//
//	memory://                 memorycache; ?ttl=5m&sliding=true&max_items=N&max_bytes=N
//	lru://                    lrucache; ?capacity=1000&ttl=5m
//	file:///var/cache/app     filecache; ?ttl=5m&sync=true&sweep=1m
//	null://                   nullcache
//	redis://, rediss://, unix://, redis+cluster://, rediss+cluster://
//	                          rediscache (see its package doc for the URL forms); our own
//	                          parameters ttl and owns_database are taken out, the rest goes
//	                          to go-redis
//
// Durations use [cache.ParseDuration] ("30s", "5m", "1d", "90"). Unknown parameters and
// bad values are errors, and no error ever shows a password. Register adds schemes for
// third-party drivers.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
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
	"github.com/cachekit/cache/drivers/rediscache"
)

// ErrUnknownScheme: a URL whose scheme no driver registered.
var ErrUnknownScheme = errors.New("registry: unknown scheme")

// ErrBadURL: a URL that does not parse, or has unknown parameters or bad values.
var ErrBadURL = errors.New("registry: bad driver URL")

// Factory opens a driver from a parsed URL. q holds the URL's query parameters; a
// factory must consume every parameter it knows with q.Take and leave the rest, which
// Open reports as unknown.
type Factory func(u *url.URL, q *Params) (cache.Driver, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a scheme available to Open. It panics if f is nil or the scheme is
// taken, like sql.Register: call it from an init function.
func Register(scheme string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if f == nil {
		panic("registry: Register factory is nil")
	}
	scheme = strings.ToLower(scheme)
	if _, dup := factories[scheme]; dup {
		panic("registry: Register called twice for scheme " + scheme)
	}
	factories[scheme] = f
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Sorted(maps.Keys(factories))
}

// Open opens the driver a URL names.
func Open(rawURL string) (cache.Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadURL, redactRaw(rawURL))
	}
	mu.RLock()
	f, ok := factories[strings.ToLower(u.Scheme)]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q in %s (registered: %s)", ErrUnknownScheme, u.Scheme, u.Redacted(), strings.Join(Schemes(), ", "))
	}
	q := &Params{v: u.Query()}
	d, err := f(u, q)
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", u.Redacted(), scrub(err, u))
	}
	if left := q.left(); len(left) > 0 {
		_ = d.Close()
		return nil, fmt.Errorf("%w: %s: unknown parameters %s", ErrBadURL, u.Redacted(), strings.Join(left, ", "))
	}
	return d, nil
}

// Params are a URL's query parameters, taken one by one.
type Params struct {
	v    url.Values
	errs []error
}

// Take removes the parameter name and returns its value ("" if absent).
func (p *Params) Take(name string) string {
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
		p.errs = append(p.errs, fmt.Errorf("parameter %s: %w", name, err))
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
		p.errs = append(p.errs, fmt.Errorf("parameter %s: %q is not a non-negative integer", name, s))
	}
	return n
}

// Bool takes a boolean parameter (true, false, 1, 0).
func (p *Params) Bool(name string) bool {
	s := p.Take(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("parameter %s: %q is not a boolean", name, s))
	}
	return b
}

// Err returns the errors of the values taken so far.
func (p *Params) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrBadURL, errors.Join(p.errs...))
}

func (p *Params) left() []string { return slices.Sorted(maps.Keys(p.v)) }

// Encode returns the parameters not taken, for a URL handed on to another parser.
func (p *Params) Encode() string { return p.v.Encode() }

func init() {
	Register("memory", func(_ *url.URL, q *Params) (cache.Driver, error) {
		o := memorycache.Options{DefaultTTL: q.Duration("ttl"), Sliding: q.Bool("sliding"), MaxItems: q.Int("max_items"), MaxBytes: int64(q.Int("max_bytes"))}
		if err := q.Err(); err != nil {
			return nil, err
		}
		return memorycache.New(o)
	})
	Register("lru", func(_ *url.URL, q *Params) (cache.Driver, error) {
		o := lrucache.Options{Capacity: q.Int("capacity"), DefaultTTL: q.Duration("ttl")}
		if err := q.Err(); err != nil {
			return nil, err
		}
		return lrucache.New(o)
	})
	Register("null", func(*url.URL, *Params) (cache.Driver, error) { return nullcache.New(nullcache.Options{}) })
	Register("file", func(u *url.URL, q *Params) (cache.Driver, error) {
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
	})
	redisFactory := func(u *url.URL, q *Params) (cache.Driver, error) {
		ttl, owns := q.Duration("ttl"), q.Bool("owns_database")
		if err := q.Err(); err != nil {
			return nil, err
		}
		rest := *u
		rest.RawQuery = q.Encode()
		q.v = url.Values{} // go-redis checks the rest of the parameters itself
		return rediscache.New(rediscache.Options{URL: rest.String(), DefaultTTL: ttl, OwnsDatabase: owns})
	}
	for _, s := range []string{"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"} {
		Register(s, redisFactory)
	}
}

// Config is a cache described in text: driver names and URLs.
type Config struct {
	// Drivers maps driver names to URLs.
	Drivers map[string]string
	// Default names the current driver (may be empty with one driver).
	Default string
	// Prefix is the global prefix.
	Prefix string
}

// New opens every driver of cfg and builds the cache. On an error, the drivers opened so
// far are closed.
func New(cfg Config) (*cache.Cache, error) {
	drivers := make(map[string]cache.Driver, len(cfg.Drivers))
	closeAll := func() {
		for _, d := range drivers {
			_ = d.Close()
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Drivers)) {
		d, err := Open(cfg.Drivers[name])
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("registry: driver %q: %w", name, err)
		}
		drivers[name] = d
	}
	c, err := cache.New(cache.Config{Drivers: drivers, Default: cfg.Default, Prefix: cfg.Prefix})
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

// FromEnv builds a cache from the environment: CACHE_DRIVERS (see [ParseDrivers]; a
// single URL is fine: "redis://127.0.0.1:6379/0"), CACHE_DEFAULT and CACHE_PREFIX.
func FromEnv() (*cache.Cache, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv with another source of variables.
func FromLookup(lookup func(string) (string, bool)) (*cache.Cache, error) {
	raw, ok := lookup("CACHE_DRIVERS")
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%w: CACHE_DRIVERS is not set", ErrBadURL)
	}
	drivers, err := ParseDrivers(raw)
	if err != nil {
		return nil, err
	}
	def, _ := lookup("CACHE_DEFAULT")
	prefix, _ := lookup("CACHE_PREFIX")
	return New(Config{Drivers: drivers, Default: def, Prefix: prefix})
}

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
