package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/inproc"
	"golang.org/x/sync/singleflight"
)

// Driver is the interface the drivers' *Driver values satisfy. It is driver.Driver; see
// package driver for the bundles every driver implements and the optional capabilities.
type Driver = driver.Driver

// Config configures a [Cache].
type Config struct {
	// Drivers is the named-driver registry: every driver the cache may use, by name.
	// At least one is required.
	Drivers map[string]Driver
	// Default is the name of the current driver at start. It may be empty when Drivers
	// holds exactly one driver.
	Default string
	// Prefix is the global prefix, joined to every key with ".": with Prefix "billing",
	// key "user.1" is stored as "billing.user.1". Leading and trailing dots are trimmed;
	// what is left must not contain "." (a prefix "acme.eu" would lie inside the prefix
	// "acme") nor the reserved "|": New refuses it with an error matching
	// [ErrInvalidConfig]. Two caches with the same prefix over the same store see each
	// other's keys and locks; with different prefixes they never do. A cache without a
	// prefix sees the whole store, every prefix's keys included. Default: no prefix.
	// See docs/keys.md.
	Prefix string
	// PrefixFunc, when set, is called on every operation and wins over Prefix: a prefix
	// per tenant or per request. Its result follows Prefix's rules, is taken as it is
	// (no trimming), and must not be empty: a call for which it returns "", or a prefix
	// with "." or "|", fails with an error that names the prefix and matches both
	// [ErrInvalidKey] and [ErrInvalidConfig], and touches nothing. Map tenant ids that
	// may hold dots (domain names) to prefixes that do not.
	PrefixFunc func(context.Context) string
	// Metrics turns on the counters and sampled latencies of [Cache.Metrics], kept in the
	// path every operation ends in (see [Hook]): one atomic addition per operation, and
	// two clock reads on about one in 64. Default: off.
	Metrics bool
	// Hooks observe every operation: see [Hook]. They run in order, after metrics.
	Hooks []Hook
	// FailOpen makes reads go on without a store that cannot be reached: Get and GetAs
	// report a miss, and Remember and SWR run the loader (still once per key in the
	// process) and return its value, storing it if they can. The failure is still
	// reported, as an error event and in the metrics. It never applies to Lock, Once,
	// Modify or any write, which fail closed, nor to a key that holds data the cache
	// cannot read (driver.ErrForeign), a closed cache, or a caller whose ctx has ended.
	// [WithFailOpen] overrides it per call. Default: false. See docs/outages.md.
	FailOpen bool
	// CheckOnStart makes New run, once, the checks of each driver that has them (a
	// Doctor method, see package driver: the Redis and PostgreSQL drivers), in the
	// background, within driver.DefaultCheckTimeout: New does not wait for the stores.
	// Each warning and error becomes an [EventFinding] (Op "Doctor", Key the check, Err
	// the driver.Finding); a subscription made after New gets the findings reported
	// before it too. Close stops the checks. Default: false, no checks. See
	// docs/cachectl.md for what the checks look at.
	CheckOnStart bool
}

// Cache is the cache manager: a registry of named drivers, one of them current, and the
// operations every driver shares (prefixes, namespaces, TTL rules, Remember, Lock).
//
// A *Cache is safe for use by many goroutines. The values returned by [Cache.Driver] and
// [Cache.Namespace] are views of the same manager: they share its drivers, its current
// driver and its Close.
type Cache struct {
	m      *manager
	pinned *namedDriver // nil: the manager's current driver
	ns     string       // the namespace of a Namespace view, "" for none
	fixed  string       // without PrefixFunc: Config.Prefix and ns, joined once
	tags   []string     // the tags of a Tags view, sorted
}

type manager struct {
	drivers    map[string]*namedDriver
	current    atomic.Pointer[namedDriver]
	prefix     string
	prefixFunc func(context.Context) string
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
	flights    singleflight.Group

	// Background work (SWR refreshes): Close cancels bgCtx and waits for bg.
	bgMu       sync.Mutex
	bg         sync.WaitGroup
	bgCtx      context.Context
	bgCancel   context.CancelFunc
	refreshing sync.Map // flight → struct{}: the refreshes running now

	// Metrics and hooks (Config.Hooks, subscriptions): want has bit k set while metrics
	// or a hook want events of kind k, so that an operation whose event nobody wants
	// pays one atomic load; hookWant is the same for the hooks alone; timed is set while
	// metrics or a hook ask for durations.
	want     atomic.Uint32
	hookWant atomic.Uint32
	timed    atomic.Bool
	hookMu   sync.Mutex
	hooks    atomic.Pointer[[]hook]
	metrics  *metrics // nil: off; set once at New
	failOpen bool     // Config.FailOpen

	// Config.CheckOnStart: the functions that stop the checks, and the findings reported
	// so far (guarded by hookMu), which a new subscription gets.
	stopChecks []func()
	findings   []Event
}

// breakerNotifier is the method set of a driver with a circuit breaker (see the package
// doc of driver, "Methods the manager discovers"): the manager calls OnBreaker once per
// cache that registers the driver, and turns each call of fn into a "breaker.opened" or
// "breaker.closed" event and into the breaker's state in the metrics. It has one
// consumer, this manager, so it is declared here rather than in package driver.
type breakerNotifier interface {
	OnBreaker(fn func(open bool))
}

// nearNotifier is the method set of a driver with a near tier that reports whether it
// serves copies (see the package doc of driver, "Methods the manager discovers"): the
// manager calls OnNear once per cache that registers the driver, and turns each call of
// fn into a "near.dropped" (serving false) or "near.restored" (serving true) event. It
// has one consumer, this manager, so it is declared here.
type nearNotifier interface {
	OnNear(fn func(serving bool))
}

// doctor is the method set of a driver that checks its store's settings (see
// driver.Finding): with Config.CheckOnStart the manager runs it once at New and reports
// each warning and error as an EventFinding. cachectl doctor declares the same method
// set for itself.
type doctor interface {
	Doctor(ctx context.Context) []driver.Finding
}

// namedDriver is a registered driver with its capabilities discovered once, here: the
// only place in the package that type-asserts a driver.
type namedDriver struct {
	name   string
	d      driver.Driver
	codec  driver.Codec // nil: the driver keeps Go values
	defTTL time.Duration
	atomic driver.Atomic   // never nil: see noAtomic
	keys   driver.KeySpace // never nil: see noKeySpace
	batch  driver.Batcher
	ttlr   driver.TTLReader
	mod    driver.Modifier
	lister driver.Lister
	near   driver.Near
	jget   inproc.JoinGetter
	// The methods whose one consumer is this manager, used at the end of New (nil:
	// absent): the state changes (stateChanges) and the checks (Config.CheckOnStart).
	breaker   breakerNotifier
	nearState nearNotifier
	doctor    doctor

	metrics *driverMetrics // with Config.Metrics: the driver's counters; set at New
}

func newNamedDriver(m *manager, name string, d driver.Driver) *namedDriver {
	nd := &namedDriver{name: name, d: d}
	if e, ok := d.(driver.Encoder); ok {
		nd.codec = e.Codec()
	}
	if t, ok := d.(driver.DefaultTTLer); ok {
		nd.defTTL = capTTL(max(t.DefaultTTL(), 0))
	}
	nd.atomic, nd.keys = bundles(d)
	nd.batch, _ = d.(driver.Batcher)
	nd.ttlr, _ = d.(driver.TTLReader)
	nd.mod, _ = d.(driver.Modifier)
	nd.lister, _ = d.(driver.Lister)
	nd.near, _ = d.(driver.Near)
	nd.jget, _ = d.(inproc.JoinGetter)
	nd.breaker, _ = d.(breakerNotifier)
	nd.nearState, _ = d.(nearNotifier)
	nd.doctor, _ = d.(doctor)
	if en, ok := d.(driver.ExpiryNotifier); ok {
		en.OnExpire(func(key string) { m.expired(nd, key) })
	}
	return nd
}

// target is where a one-key operation runs: the driver, and the key as the driver sees
// it (k) and as the caller gave it (key).
type target struct {
	d   *namedDriver
	k   string
	key string
}

// New builds a cache from cfg. It does not copy or keep cfg.Drivers: later changes to
// the map have no effect.
func New(cfg Config) (*Cache, error) {
	if len(cfg.Drivers) == 0 {
		return nil, fmt.Errorf("%w: no drivers", ErrInvalidConfig)
	}
	m := &manager{
		drivers:    make(map[string]*namedDriver, len(cfg.Drivers)),
		prefix:     trimDots(cfg.Prefix),
		prefixFunc: cfg.PrefixFunc,
		failOpen:   cfg.FailOpen,
	}
	if m.prefix != "" {
		if err := checkPrefix(m.prefix); err != nil {
			return nil, fmt.Errorf("%w: Prefix %q: %w", ErrInvalidConfig, cfg.Prefix, err)
		}
	}
	m.bgCtx, m.bgCancel = context.WithCancel(context.Background())
	for name, d := range cfg.Drivers {
		if d == nil {
			return nil, fmt.Errorf("%w: driver %q is nil", ErrInvalidConfig, name)
		}
		m.drivers[name] = newNamedDriver(m, name, d)
	}
	def := cfg.Default
	if def == "" {
		if len(cfg.Drivers) > 1 {
			return nil, fmt.Errorf("%w: Default must name one of the %d drivers %q", ErrInvalidConfig, len(cfg.Drivers), slices.Sorted(maps.Keys(cfg.Drivers)))
		}
		for name := range cfg.Drivers {
			def = name
		}
	}
	var hooks []hook
	if cfg.Metrics {
		m.metrics = newMetrics(slices.Collect(maps.Keys(m.drivers)))
		for name, nd := range m.drivers {
			nd.metrics = m.metrics.drivers[name]
		}
	}
	for i, h := range cfg.Hooks {
		if h.Observe == nil {
			return nil, fmt.Errorf("%w: Hooks[%d] has no Observe", ErrInvalidConfig, i)
		}
		hooks = append(hooks, newHook(h))
	}
	m.setHooks(hooks)
	nd, ok := m.drivers[def]
	if !ok {
		return nil, fmt.Errorf("%w: Default %q: %w", ErrInvalidConfig, def, ErrUnknownDriver)
	}
	m.current.Store(nd)
	for _, nd := range m.drivers {
		for i := range stateChanges {
			s := &stateChanges[i]
			s.register(nd, func(on bool) { m.changed(nd, s, on) })
		}
	}
	if cfg.CheckOnStart {
		for _, name := range slices.Sorted(maps.Keys(m.drivers)) {
			if nd := m.drivers[name]; nd.doctor != nil {
				m.stopChecks = append(m.stopChecks, driver.StartChecks(nd.doctor.Doctor, func(f driver.Finding) { m.finding(nd, f) }))
			}
		}
	}
	return &Cache{m: m, fixed: m.prefix}, nil
}

var defaultCache atomic.Pointer[Cache]

// SetDefault makes c the application-wide cache that [Default] returns.
func SetDefault(c *Cache) { defaultCache.Store(c) }

// Default returns the cache given to [SetDefault], or nil if there is none.
func Default() *Cache { return defaultCache.Load() }

// Use makes the named driver the current one, for c and every view of it that is not
// pinned with [Cache.Driver]. It is safe while other goroutines use the cache: each
// operation runs entirely on the driver that was current when it started.
func (c *Cache) Use(name string) error {
	nd, err := c.m.lookup(name)
	if err != nil {
		return opError(opUse, "", err)
	}
	c.m.current.Store(nd)
	return nil
}

// Current returns the name of the driver that c's operations use: the pinned driver of a
// [Cache.Driver] view, else the manager's current driver.
func (c *Cache) Current() string {
	if c.pinned != nil {
		return c.pinned.name
	}
	return c.m.current.Load().name
}

// Drivers returns the names of the registered drivers, sorted.
func (c *Cache) Drivers() []string { return slices.Sorted(maps.Keys(c.m.drivers)) }

// Driver returns a view of c pinned to the named driver. c's current driver is
// untouched. An unregistered name is an error matching [ErrUnknownDriver].
func (c *Cache) Driver(name string) (*Cache, error) {
	nd, err := c.m.lookup(name)
	if err != nil {
		return nil, opError(opDriver, "", err)
	}
	return &Cache{m: c.m, pinned: nd, ns: c.ns, fixed: c.fixed, tags: c.tags}, nil
}

// Close closes every driver of the manager, once, after cancelling and waiting for the
// background refreshes of [SWR] and the checks of Config.CheckOnStart. Afterwards every
// operation of c and of its views returns an error matching [ErrClosed]. Closing a view
// closes the manager.
func (c *Cache) Close() error {
	m := c.m
	m.closeOnce.Do(func() {
		m.bgMu.Lock()
		m.closed.Store(true)
		m.bgMu.Unlock()
		m.bgCancel()
		m.bg.Wait() // background refreshes end before their drivers close
		for _, stop := range m.stopChecks {
			stop() // the checks end before their drivers close, and report nothing after
		}
		m.stopSubscriptions()
		var errs []error
		for _, name := range slices.Sorted(maps.Keys(m.drivers)) {
			if err := m.drivers[name].d.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cache: close driver %q: %w", name, err))
			}
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

func (m *manager) lookup(name string) (*namedDriver, error) {
	nd, ok := m.drivers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %q)", ErrUnknownDriver, name, slices.Sorted(maps.Keys(m.drivers)))
	}
	return nd, nil
}

// driverFor returns the driver an operation runs on: override if set, else the pinned
// driver, else the current one.
func (c *Cache) driverFor(override string) (*namedDriver, error) {
	if c.m.closed.Load() {
		return nil, ErrClosed
	}
	if override != "" {
		return c.m.lookup(override)
	}
	if c.pinned != nil {
		return c.pinned, nil
	}
	return c.m.current.Load(), nil
}

// prep resolves the driver and the final key of a one-key operation.
func (c *Cache) prep(ctx context.Context, override, key string) (*namedDriver, string, error) {
	d, scope, err := c.prepScope(ctx, override, key)
	if err != nil {
		return nil, "", err
	}
	return d, join(scope, key), nil
}

// prepScope is prep for the reads that go through readAt: the scope instead of the
// final key.
func (c *Cache) prepScope(ctx context.Context, override, key string) (*namedDriver, string, error) {
	d, err := c.driverFor(override)
	if err != nil {
		return nil, "", err
	}
	scope, err := c.keyScope(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return d, scope, nil
}
