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
// returns its exit code. Its messages name what the user gave: --url, --driver,
// --prefix, or the environment variables.
func (s *session) open() int {
	a, cf := s.app, s.flags
	var cfg registry.Config
	source := registry.DriversVar // where the URLs come from, for their errors
	if cf.url != "" {
		source = "--url"
		cfg.Drivers = map[string]string{"default": cf.url}
		if cf.driver != "" && cf.driver != "default" {
			return s.fail(exitUsage, fmt.Errorf("--driver %q: with --url the only driver is \"default\"", cf.driver))
		}
	} else {
		raw, ok := a.lookupEnv(registry.DriversVar)
		if !ok || strings.TrimSpace(raw) == "" {
			return s.fail(exitUsage, errors.New("no store: give --url URL or set CACHE_DRIVERS (see cachectl help)"))
		}
		var err error
		if cfg, err = registry.ConfigFromLookup(a.lookupEnv); err != nil {
			return s.fail(exitUsage, err)
		}
	}
	if cf.driver != "" {
		cfg.Cache.Default = cf.driver
	}
	if cf.prefix.set {
		cfg.Cache.Prefix = cf.prefix.v
	}
	if err := checkDriver(cfg, cf.driver != ""); err != nil {
		return s.fail(exitUsage, err)
	}
	err := registry.Check(cfg, func(field string) string {
		if field == "Prefix" && cf.prefix.set {
			return "--prefix"
		}
		return ""
	})
	if err != nil {
		return s.fail(exitUsage, err)
	}
	// The drivers are opened one by one, as registry.FromEnv does, so that the commands
	// that need a driver's own capability (ttl) can reach it.
	s.drivers = make(map[string]cache.Driver, len(cfg.Drivers))
	for _, name := range slices.Sorted(maps.Keys(cfg.Drivers)) {
		d, err := a.openURL(cfg.Drivers[name])
		if err != nil {
			// The drivers connect on first use (Redis), so a driver that does not open
			// was given a bad URL or options: a usage error.
			s.closeDrivers()
			return s.fail(exitUsage, fmt.Errorf("%s: driver %q: %w", source, name, err))
		}
		s.drivers[name] = d
	}
	cc := cfg.Cache
	cc.Drivers = s.drivers
	cc.CheckOnStart = false // the application's setting; cachectl doctor runs the checks
	c, err := cache.New(cc)
	if err != nil {
		s.closeDrivers()
		return s.fail(exitUsage, err)
	}
	s.c, s.prefix = c, strings.Trim(cc.Prefix, ".")
	return exitOK
}

// checkDriver checks the driver to use against CACHE_DRIVERS, naming --driver when it
// came from there, else CACHE_DEFAULT.
func checkDriver(cfg registry.Config, fromFlag bool) error {
	names := slices.Sorted(maps.Keys(cfg.Drivers))
	def := cfg.Cache.Default
	switch {
	case def == "" && len(names) > 1:
		return fmt.Errorf("CACHE_DRIVERS names %d drivers (%s): choose one with --driver NAME or CACHE_DEFAULT", len(names), strings.Join(names, ", "))
	case def != "" && !slices.Contains(names, def):
		source := "CACHE_DEFAULT"
		if fromFlag {
			source = "--driver"
		}
		return fmt.Errorf("%s %q: CACHE_DRIVERS has no such driver (it names %s)%s", source, def, strings.Join(names, ", "), didYouMean(def, names))
	}
	return nil
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
