package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

func init() {
	for _, c := range []*command{
		{name: "get", usage: "KEY", min: 1, max: 1, store: true, run: cmdGet},
		{name: "set", usage: "KEY VALUE [--ttl D] [--json-value]", min: 2, max: 2, store: true, flags: setFlags, run: cmdSet},
		{name: "del", usage: "KEY...", min: 1, max: -1, store: true, run: cmdDel},
		{name: "ttl", usage: "KEY", min: 1, max: 1, store: true, run: cmdTTL},
		{name: "keys", usage: "[NAMESPACE]", min: 0, max: 1, store: true, run: cmdKeys},
		{name: "locks", usage: "[NAMESPACE]", min: 0, max: 1, store: true, run: cmdLocks},
		{name: "lock", usage: "KEY --ttl D [--owner O] [--hold D] [--wait D]", min: 1, max: 1, store: true, flags: lockFlags, run: cmdLock},
		{name: "unlock", usage: "KEY (--force | --token T)", min: 1, max: 1, store: true, flags: unlockFlags, run: cmdUnlock},
		{name: "stats", usage: "", min: 0, max: 0, store: true, run: cmdStats},
	} {
		commands[c.name] = c
	}
}

// opts are the per-command flags.
type opts struct {
	ttl, hold, wait  time.Duration
	jsonValue, force bool
	owner, token     string
}

func setFlags(fs *flag.FlagSet, o *opts) {
	fs.Var(durationFlag{&o.ttl}, "ttl", "how long the value lives (default: the driver's default TTL, or no expiry)")
	fs.BoolVar(&o.jsonValue, "json-value", false, "VALUE is JSON: store the JSON value, not the string")
}

func lockFlags(fs *flag.FlagSet, o *opts) {
	fs.Var(durationFlag{&o.ttl}, "ttl", "the lock's TTL (required); the lock is renewed every TTL/3 while held")
	fs.StringVar(&o.owner, "owner", "", "the owner label (default: cachectl.<host>.<pid>)")
	fs.Var(durationFlag{&o.hold}, "hold", "how long to hold the lock (default 0: until SIGINT or SIGTERM)")
	fs.Var(durationFlag{&o.wait}, "wait", "wait up to this long for a held lock to come free (default 0: give up at once)")
}

func unlockFlags(fs *flag.FlagSet, o *opts) {
	fs.BoolVar(&o.force, "force", false, "remove the lock whoever holds it")
	fs.StringVar(&o.token, "token", "", "release the lock only if this token (from cachectl lock) still holds it")
}

// --- get ---

type getDoc struct {
	Key   string          `json:"key"`
	Found bool            `json:"found"`
	Value json.RawMessage `json:"value,omitempty"`
}

func cmdGet(a *app, s *session, args []string) int {
	key := args[0]
	ctx, cancel := s.ctx()
	defer cancel()
	var raw json.RawMessage
	found, err := s.c.Get(ctx, key, &raw)
	if err != nil && found {
		// Stored by something that does not write JSON: show the bytes as text.
		d, k := s.current(key)
		if v, ok, rerr := d.Get(ctx, k); rerr == nil && ok {
			if b, isBytes := v.([]byte); isBytes {
				raw, _ = json.Marshal(string(b))
				err = nil
			}
		}
	}
	if err != nil {
		return s.fail(exitFailure, err)
	}
	if !found {
		if s.flags.json {
			s.emit(getDoc{Key: key})
		}
		fmt.Fprintf(a.stderr, "cachectl get: %q not found\n", key)
		return exitNotFound
	}
	if !json.Valid(raw) { // []byte kept as it is by an in-process driver
		raw, _ = json.Marshal(string(raw))
	}
	var compact bytes.Buffer
	if json.Compact(&compact, raw) == nil {
		raw = compact.Bytes()
	}
	if s.flags.json {
		s.emit(getDoc{Key: key, Found: true, Value: raw})
		return exitOK
	}
	var str string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &str) == nil {
		fmt.Fprintln(a.stdout, str)
	} else {
		fmt.Fprintln(a.stdout, string(raw))
	}
	return exitOK
}

// --- set ---

type setDoc struct {
	Key   string `json:"key"`
	TTLms int64  `json:"ttl_ms"`
}

func cmdSet(a *app, s *session, args []string) int {
	key, text := args[0], args[1]
	var v any = text
	if s.opts.jsonValue {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(text)); err != nil {
			return s.fail(exitUsage, fmt.Errorf("--json-value: VALUE is not JSON: %w", err))
		}
		v = json.RawMessage(b.Bytes())
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.c.Set(ctx, key, v, s.opts.ttl); err != nil {
		return s.fail(exitFailure, err)
	}
	if s.flags.json {
		s.emit(setDoc{Key: key, TTLms: s.opts.ttl.Milliseconds()})
	}
	return exitOK
}

// --- del ---

type delDoc struct {
	Keys    []string `json:"keys"`
	Removed int      `json:"removed"`
}

func cmdDel(a *app, s *session, args []string) int {
	ctx, cancel := s.ctx()
	defer cancel()
	// Which keys exist, for the report: not atomic with the removal, and only for
	// information.
	removed := 0
	for _, k := range args {
		found, err := s.c.Has(ctx, k)
		if err != nil {
			return s.fail(exitFailure, err)
		}
		if found {
			removed++
		}
	}
	if err := s.c.Remove(ctx, args...); err != nil {
		return s.fail(exitFailure, err)
	}
	if s.flags.json {
		s.emit(delDoc{Keys: args, Removed: removed})
	}
	return exitOK
}

// --- ttl ---

type ttlDoc struct {
	Key   string `json:"key"`
	Found bool   `json:"found"`
	TTLms int64  `json:"ttl_ms"` // 0: no expiry
}

func cmdTTL(a *app, s *session, args []string) int {
	key := args[0]
	if key == "" {
		return s.fail(exitUsage, errors.New("empty key"))
	}
	d, k := s.current(key)
	r, ok := d.(driver.TTLReader)
	if !ok {
		return s.fail(exitFailure, fmt.Errorf("driver %q (%T) cannot tell a key's TTL: %w", s.c.Current(), d, cache.ErrUnsupported))
	}
	ctx, cancel := s.ctx()
	defer cancel()
	ttl, found, err := r.TTL(ctx, k)
	if err != nil {
		return s.fail(exitFailure, fmt.Errorf("ttl %q: %w", key, err))
	}
	if !found {
		if s.flags.json {
			s.emit(ttlDoc{Key: key})
		}
		fmt.Fprintf(a.stderr, "cachectl ttl: %q not found\n", key)
		return exitNotFound
	}
	if s.flags.json {
		s.emit(ttlDoc{Key: key, Found: true, TTLms: ttlMillis(ttl)})
		return exitOK
	}
	fmt.Fprintln(a.stdout, showTTL(ttl))
	return exitOK
}

// ttlMillis is a remaining TTL in milliseconds: 0 for no expiry, -1 when unknown, and
// at least 1 for a live key with a TTL.
func ttlMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return max(int64(ttl), -1)
	}
	return max(ttl.Milliseconds(), 1)
}

// showTTL is a remaining TTL for people.
func showTTL(ttl time.Duration) string {
	switch {
	case ttl < 0:
		return "unknown"
	case ttl == 0:
		return "none"
	case ttl >= time.Second:
		return ttl.Round(100 * time.Millisecond).String()
	}
	return ttl.Round(time.Millisecond).String()
}

// --- keys ---

type keysDoc struct {
	Namespace string   `json:"namespace"`
	Count     int      `json:"count"`
	Keys      []string `json:"keys"`
}

func cmdKeys(a *app, s *session, args []string) int {
	ns := ""
	if len(args) > 0 {
		ns = args[0]
	}
	ctx, cancel := s.ctx()
	defer cancel()
	keys := []string{}
	if err := s.c.Scan(ctx, ns, func(k string) bool { keys = append(keys, k); return true }); err != nil {
		return s.fail(exitFailure, err)
	}
	slices.Sort(keys)
	if s.flags.json {
		s.emit(keysDoc{Namespace: ns, Count: len(keys), Keys: keys})
		return exitOK
	}
	for _, k := range keys {
		fmt.Fprintln(a.stdout, k)
	}
	return exitOK
}

// --- locks ---

type lockDoc struct {
	Key   string `json:"key"`
	Owner string `json:"owner"`
	Token string `json:"token"`
	TTLms int64  `json:"ttl_ms"` // -1: the driver cannot tell; 0: no expiry
}

type locksDoc struct {
	Namespace string    `json:"namespace"`
	Count     int       `json:"count"`
	Locks     []lockDoc `json:"locks"`
}

func cmdLocks(a *app, s *session, args []string) int {
	ns := ""
	if len(args) > 0 {
		ns = args[0]
	}
	ctx, cancel := s.ctx()
	defer cancel()
	infos, err := cache.ListLocks(ctx, s.c, ns)
	if err != nil {
		return s.fail(exitFailure, err)
	}
	slices.SortFunc(infos, func(x, y cache.LockInfo) int { return strings.Compare(x.Key, y.Key) })
	doc := locksDoc{Namespace: ns, Count: len(infos), Locks: []lockDoc{}}
	for _, in := range infos {
		doc.Locks = append(doc.Locks, lockDoc{Key: in.Key, Owner: in.Owner, Token: in.Token, TTLms: ttlMillis(in.TTL)})
	}
	if s.flags.json {
		s.emit(doc)
		return exitOK
	}
	if len(infos) == 0 {
		fmt.Fprintln(a.stderr, "no locks held")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tOWNER\tTTL\tTOKEN")
	for _, in := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.Key, in.Owner, showTTL(in.TTL), in.Token)
	}
	_ = tw.Flush()
	return exitOK
}

// --- lock ---

type lockTakenDoc struct {
	Key      string   `json:"key"`
	Acquired bool     `json:"acquired"`
	Owner    string   `json:"owner,omitempty"`
	Token    string   `json:"token,omitempty"`
	TTLms    int64    `json:"ttl_ms,omitempty"`
	Holdms   int64    `json:"hold_ms,omitempty"` // 0: until a signal
	Holder   *lockDoc `json:"holder,omitempty"`  // who holds it, when not acquired
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "cachectl." + host + "." + strconv.Itoa(os.Getpid())
}

func cmdLock(a *app, s *session, args []string) int {
	key := args[0]
	if s.opts.ttl <= 0 {
		return s.fail(exitUsage, errors.New("--ttl is required: how long the lock lives if cachectl dies"))
	}
	ttl, hold, owner := s.opts.ttl, s.opts.hold, s.opts.owner
	if owner == "" {
		owner = defaultOwner()
	}
	// SIGINT and SIGTERM end the hold (and a wait) and release the lock.
	sctx, stop := signal.NotifyContext(a.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	actx, cancel := sctx, context.CancelFunc(func() {})
	if s.flags.timeout > 0 {
		actx, cancel = context.WithTimeout(sctx, s.opts.wait+s.flags.timeout)
	}
	h, err := cache.Acquire(actx, s.c, key, cache.LockOptions{TTL: ttl, Owner: owner, Wait: s.opts.wait})
	cancel()
	if errors.Is(err, cache.ErrNotAcquired) {
		doc := lockTakenDoc{Key: key}
		msg := fmt.Sprintf("%q is held by another holder", key)
		ictx, icancel := s.ctx()
		if info, ierr := cache.InspectLock(ictx, s.c, key); ierr == nil && info.Held {
			doc.Holder = &lockDoc{Key: key, Owner: info.Owner, Token: info.Token, TTLms: ttlMillis(info.TTL)}
			msg = fmt.Sprintf("%q is held by %s (TTL %s)", key, info.Owner, showTTL(info.TTL))
		}
		icancel()
		if s.flags.json {
			s.emit(doc)
		}
		fmt.Fprintf(a.stderr, "cachectl lock: %s\n", msg)
		return exitHeld
	}
	if err != nil {
		return s.fail(exitFailure, err)
	}

	if s.flags.json {
		s.emit(lockTakenDoc{Key: key, Acquired: true, Owner: owner, Token: h.Token(), TTLms: ttl.Milliseconds(), Holdms: hold.Milliseconds()})
	} else {
		fmt.Fprintln(a.stdout, h.Token())
	}
	interval := max(ttl/3, 10*time.Millisecond)
	until := "until SIGINT or SIGTERM"
	if hold > 0 {
		until = "for " + hold.String() + " or until SIGINT or SIGTERM"
	}
	fmt.Fprintf(a.stderr, "cachectl lock: holding %q as %s (TTL %s, renewed every %s) %s\n", key, owner, ttl, interval.Round(time.Millisecond), until)
	if a.notify != nil {
		a.notify(h.Token())
	}

	code := holdLock(a, s, h, ttl, hold, interval, sctx)
	if code != exitOK {
		return code
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(a.ctx), max(s.flags.timeout, cache.ReleaseTimeout))
	defer rcancel()
	err = h.Release(rctx)
	switch {
	case errors.Is(err, cache.ErrLockNotHeld):
		fmt.Fprintf(a.stderr, "cachectl lock: %q was no longer held when released: it was force-released or expired\n", key)
		return exitFailure
	case err != nil:
		fmt.Fprintf(a.stderr, "cachectl lock: release: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(a.stderr, "cachectl lock: released %q\n", key)
	return exitOK
}

// holdLock keeps h until hold elapses (0: forever) or ctx ends, renewing it every
// interval. It returns exitOK when the lock is to be released, or exitFailure when the
// lock was lost (reported).
func holdLock(a *app, s *session, h *cache.LockHandle, ttl, hold, interval time.Duration, ctx context.Context) int {
	var holdC <-chan time.Time
	if hold > 0 {
		t := time.NewTimer(hold)
		defer t.Stop()
		holdC = t.C
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-holdC:
			return exitOK
		case <-tick.C:
		}
		ectx, cancel := context.WithTimeout(ctx, interval)
		err := h.Extend(ectx, ttl)
		cancel()
		switch {
		case err == nil:
			renewed = time.Now()
		case ctx.Err() != nil:
			return exitOK // a signal during the renewal
		case errors.Is(err, cache.ErrLockNotHeld):
			fmt.Fprintf(a.stderr, "cachectl lock: lost %q: it was force-released or expired\n", h.Key())
			return exitFailure
		case errors.Is(err, cache.ErrUnsupported):
			fmt.Fprintf(a.stderr, "cachectl lock: the driver cannot renew locks: %q expires %s after it was taken\n", h.Key(), ttl)
			tick.Stop()
		default:
			if time.Since(renewed) >= ttl {
				fmt.Fprintf(a.stderr, "cachectl lock: lost %q: renewals failed for a whole TTL: %v\n", h.Key(), err)
				return exitFailure
			}
			fmt.Fprintf(a.stderr, "cachectl lock: renewal failed, retrying: %v\n", err)
		}
	}
}

// --- unlock ---

type unlockDoc struct {
	Key      string `json:"key"`
	Released bool   `json:"released"`
	Owner    string `json:"owner,omitempty"`
	Token    string `json:"token,omitempty"`
}

func cmdUnlock(a *app, s *session, args []string) int {
	key := args[0]
	switch {
	case s.opts.force && s.opts.token != "":
		return s.fail(exitUsage, errors.New("give --force or --token, not both"))
	case !s.opts.force && s.opts.token == "":
		return s.fail(exitUsage, errors.New("give --force to remove the lock whoever holds it, or --token T to release it only if T still holds it"))
	}
	ctx, cancel := s.ctx()
	defer cancel()
	notHeld := func(msg string) int {
		if s.flags.json {
			s.emit(unlockDoc{Key: key})
		}
		fmt.Fprintf(a.stderr, "cachectl unlock: %s\n", msg)
		return exitNotFound
	}
	info, err := cache.InspectLock(ctx, s.c, key)
	if err != nil {
		// Either the store failed or the key holds something other than a lock.
		if found, herr := s.c.Has(ctx, key); herr == nil && found {
			return notHeld(fmt.Sprintf("%q holds a value that is not a lock (cachectl del removes it)", key))
		}
		return s.fail(exitFailure, err)
	}
	if !info.Held {
		return notHeld(fmt.Sprintf("%q holds no lock", key))
	}
	if s.opts.token != "" {
		if info.Token != s.opts.token {
			if s.flags.json {
				s.emit(unlockDoc{Key: key, Owner: info.Owner, Token: info.Token})
			}
			fmt.Fprintf(a.stderr, "cachectl unlock: %q is held by another holder: %s\n", key, info.Owner)
			return exitHeld
		}
		h, err := cache.RestoreLock(ctx, s.c, key, s.opts.token, cache.LockOptions{})
		if err != nil {
			return s.fail(exitUsage, err)
		}
		if err := h.Release(ctx); err != nil {
			if errors.Is(err, cache.ErrLockNotHeld) {
				return notHeld(fmt.Sprintf("%q was released or expired meanwhile", key))
			}
			return s.fail(exitFailure, err)
		}
	} else if err := cache.ForceRelease(ctx, s.c, key); err != nil {
		return s.fail(exitFailure, err)
	}
	if s.flags.json {
		s.emit(unlockDoc{Key: key, Released: true, Owner: info.Owner, Token: info.Token})
		return exitOK
	}
	fmt.Fprintf(a.stdout, "released %s (held by %s, TTL %s)\n", key, info.Owner, showTTL(info.TTL))
	return exitOK
}

// --- stats ---

type nsCount struct {
	Namespace string `json:"namespace"` // "": keys without a dot
	Keys      int    `json:"keys"`
}

type statsDoc struct {
	Driver     string    `json:"driver"`
	DriverType string    `json:"driver_type"`
	Prefix     string    `json:"prefix"`
	Keys       int       `json:"keys"`
	Namespaces []nsCount `json:"namespaces"`
}

func cmdStats(a *app, s *session, _ []string) int {
	ctx, cancel := s.ctx()
	defer cancel()
	counts := map[string]int{}
	total := 0
	err := s.c.Scan(ctx, "", func(k string) bool {
		ns, _, ok := strings.Cut(k, ".")
		if !ok {
			ns = ""
		}
		counts[ns]++
		total++
		return true
	})
	if err != nil {
		return s.fail(exitFailure, err)
	}
	d := s.drivers[s.c.Current()]
	doc := statsDoc{Driver: s.c.Current(), DriverType: fmt.Sprintf("%T", d), Prefix: s.prefix, Keys: total, Namespaces: []nsCount{}}
	for ns, n := range counts {
		doc.Namespaces = append(doc.Namespaces, nsCount{Namespace: ns, Keys: n})
	}
	slices.SortFunc(doc.Namespaces, func(x, y nsCount) int { return strings.Compare(x.Namespace, y.Namespace) })
	if s.flags.json {
		s.emit(doc)
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "driver\t%s (%s)\n", doc.Driver, doc.DriverType)
	if doc.Prefix != "" {
		fmt.Fprintf(tw, "prefix\t%s\n", doc.Prefix)
	}
	fmt.Fprintf(tw, "keys\t%d\n", total)
	if len(doc.Namespaces) > 0 {
		fmt.Fprintln(tw, "\nNAMESPACE\tKEYS")
		for _, n := range doc.Namespaces {
			name := n.Namespace
			if name == "" {
				name = "(none)"
			}
			fmt.Fprintf(tw, "%s\t%d\n", name, n.Keys)
		}
	}
	_ = tw.Flush()
	return exitOK
}
