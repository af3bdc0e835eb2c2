package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/registry"
)

// session is one command run against a store.
type session struct {
	app   *app
	cmd   string
	flags commonFlags
	opts  opts

	c       *cache.Cache
	drivers map[string]cache.Driver // as opened, by name
	prefix  string                  // the global prefix, trimmed of dots
}

// open builds the cache from --url or the environment. It reports a failure itself and
// returns its exit code.
func (s *session) open() int {
	a, cf := s.app, s.flags
	var (
		urls   map[string]string
		def    = cf.driver
		prefix = cf.prefix.v
	)
	if cf.url != "" {
		urls = map[string]string{"default": cf.url}
		if def != "" && def != "default" {
			return s.fail(exitUsage, fmt.Errorf("--driver %q: with --url the only driver is \"default\"", def))
		}
	} else {
		raw, ok := a.lookupEnv("CACHE_DRIVERS")
		if !ok || strings.TrimSpace(raw) == "" {
			return s.fail(exitUsage, errors.New("no store: give --url URL or set CACHE_DRIVERS (see cachectl help)"))
		}
		var err error
		if urls, err = registry.ParseDrivers(raw); err != nil {
			return s.fail(exitUsage, fmt.Errorf("CACHE_DRIVERS: %w", err))
		}
		if def == "" {
			def, _ = a.lookupEnv("CACHE_DEFAULT")
		}
		if !cf.prefix.set {
			prefix, _ = a.lookupEnv("CACHE_PREFIX")
		}
	}
	// The drivers are opened one by one, as registry.FromEnv does, so that the commands
	// that need a driver's own capability (ttl) can reach it.
	s.drivers = make(map[string]cache.Driver, len(urls))
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		d, err := a.openURL(urls[name])
		if err != nil {
			// The drivers connect on first use (Redis), so a driver that does not open
			// was given a bad URL or options: a usage error.
			s.closeDrivers()
			return s.fail(exitUsage, fmt.Errorf("driver %q: %w", name, err))
		}
		s.drivers[name] = d
	}
	c, err := cache.New(cache.Config{Drivers: s.drivers, Default: def, Prefix: prefix})
	if err != nil {
		s.closeDrivers()
		return s.fail(exitUsage, err)
	}
	s.c, s.prefix = c, strings.Trim(prefix, ".")
	return exitOK
}

func (s *session) close() {
	if s.c != nil {
		_ = s.c.Close()
	}
}

func (s *session) closeDrivers() {
	for _, d := range s.drivers {
		_ = d.Close()
	}
}

// ctx returns a context for one store operation, bounded by --timeout.
func (s *session) ctx() (context.Context, context.CancelFunc) {
	if s.flags.timeout <= 0 {
		return context.WithCancel(s.app.ctx)
	}
	return context.WithTimeout(s.app.ctx, s.flags.timeout)
}

// current returns the driver the cache uses, as opened, and the key as that driver
// names it (the global prefix joined with ".").
func (s *session) current(key string) (cache.Driver, string) {
	d := s.drivers[s.c.Current()]
	if s.prefix == "" {
		return d, key
	}
	return d, s.prefix + "." + key
}

// fail reports err: on stderr always, and as {"error": ...} on stdout with --json when
// the failure is not a usage error. It returns code.
func (s *session) fail(code int, err error) int {
	fmt.Fprintf(s.app.stderr, "cachectl %s: %v\n", s.cmd, err)
	if s.flags.json && code != exitUsage {
		s.emit(errorDoc{Error: err.Error()})
	}
	return code
}

type errorDoc struct {
	Error string `json:"error"`
}

// emit writes one JSON document on stdout.
func (s *session) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types reach here
		b, _ = json.Marshal(errorDoc{Error: err.Error()})
	}
	b = append(b, '\n')
	_, _ = s.app.stdout.Write(b)
}

// quietRedis silences go-redis's own log (a dial failure per retry): cachectl reports
// the failure itself, once.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
