package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/registry"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopAll()
	pgtest.StopAll()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// result is what one cachectl run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// doc decodes stdout, which must be exactly one JSON document.
func (r result) doc(t *testing.T) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\nstdout: %q\nstderr: %q", err, r.stdout, r.stderr)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		t.Fatalf("stdout holds more than one JSON document: %q", r.stdout)
	}
	return m
}

// store is where a test's commands run: the memory driver (shared by the runs of one
// test through a fake URL) or a real Redis, under a prefix of the test's own.
type store struct {
	name string
	args []string // --url and --prefix
	// c sees the same keys as the commands (same driver, same prefix).
	c   *cache.Cache
	env map[string]string
	// open replaces registry.Open: it serves memURL from the test's memory driver.
	open func(string) (cache.Driver, error)
}

const memURL = "memory://cachectl-test"

// keepOpen is a memory driver that the commands' Close leaves open, so that the runs
// of one test share it, as the processes sharing a Redis do.
type keepOpen struct{ *memorycache.Driver }

func (keepOpen) Close() error { return nil }

func memoryStore(t *testing.T) *store {
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"default": keepOpen{mem}}})
	if err != nil {
		t.Fatal(err)
	}
	return &store{
		name: "memory", args: []string{"--url", memURL}, c: c, env: map[string]string{},
		open: func(u string) (cache.Driver, error) {
			if u == memURL {
				return keepOpen{mem}, nil
			}
			return registry.Open(u)
		},
	}
}

var prefixes struct {
	sync.Mutex
	n int
}

func redisStore(t *testing.T) *store {
	u := redistest.URL(t)
	prefixes.Lock()
	prefixes.n++
	prefix := fmt.Sprintf("cachectl-test-%d-%d", time.Now().UnixNano(), prefixes.n)
	prefixes.Unlock()
	d, err := registry.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"default": d}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The shared Redis keeps nothing of this test's.
		_ = c.Flush(context.Background())
		_ = c.Close()
	})
	return &store{name: "redis", args: []string{"--url", u, "--prefix", prefix}, c: c, env: map[string]string{}, open: registry.Open}
}

// stores runs f on the memory driver and on Redis.
func stores(t *testing.T, f func(t *testing.T, s *store)) {
	t.Run("memory", func(t *testing.T) { f(t, memoryStore(t)) })
	t.Run("redis", func(t *testing.T) { f(t, redisStore(t)) })
}

func (s *store) app(ctx context.Context, stdout, stderr *bytes.Buffer) *app {
	a := newApp(stdout, stderr)
	a.ctx = ctx
	a.lookupEnv = func(k string) (string, bool) { v, ok := s.env[k]; return v, ok }
	a.openURL = s.open
	return a
}

// run runs cachectl with args and the store's --url and --prefix after them.
func (s *store) run(t *testing.T, args ...string) result {
	t.Helper()
	return s.runCtx(t.Context(), nil, append(args, s.args...)...)
}

// bare runs cachectl with args only: the store comes from s.env, if anywhere.
func (s *store) bare(t *testing.T, args ...string) result {
	t.Helper()
	return s.runCtx(t.Context(), nil, args...)
}

func (s *store) runCtx(ctx context.Context, notify func(string), args ...string) result {
	var stdout, stderr bytes.Buffer
	a := s.app(ctx, &stdout, &stderr)
	a.notify = notify
	code := a.run(args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d; want %d\nstdout: %q\nstderr: %q", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func TestGetSet(t *testing.T) {
	stores(t, func(t *testing.T, s *store) {
		s.run(t, "set", "user.1", "alice").want(t, exitOK)
		if r := s.run(t, "get", "user.1").want(t, exitOK); r.stdout != "alice\n" {
			t.Errorf("get user.1 = %q; want the raw string %q", r.stdout, "alice\n")
		}
		m := s.run(t, "get", "user.1", "--json").want(t, exitOK).doc(t)
		if m["key"] != "user.1" || m["found"] != true || m["value"] != "alice" {
			t.Errorf("get --json = %v", m)
		}
		// A Go program reads what cachectl wrote as a string.
		if v, found, err := cache.GetAs[string](t.Context(), s.c, "user.1"); err != nil || !found || v != "alice" {
			t.Errorf("GetAs[string] = %q, %v, %v", v, found, err)
		}

		// A number without --json-value is the string "42"; with it, the number 42.
		s.run(t, "set", "n.str", "42").want(t, exitOK)
		if m := s.run(t, "--json", "get", "n.str").want(t, exitOK).doc(t); m["value"] != "42" {
			t.Errorf("value of a string set = %#v; want the string \"42\"", m["value"])
		}
		s.run(t, "set", "--json-value", "n.num", "42").want(t, exitOK)
		if m := s.run(t, "get", "n.num", "--json").want(t, exitOK).doc(t); m["value"] != float64(42) {
			t.Errorf("value of a --json-value set = %#v; want the number 42", m["value"])
		}
		if n, _, err := cache.GetAs[int](t.Context(), s.c, "n.num"); err != nil || n != 42 {
			t.Errorf("GetAs[int] = %d, %v", n, err)
		}

		// JSON values print as compact JSON.
		s.run(t, "set", "cfg.x", `{"a": 1, "b": [true, "x"]}`, "--json-value", "--ttl", "5m").want(t, exitOK)
		if r := s.run(t, "get", "cfg.x").want(t, exitOK); r.stdout != `{"a":1,"b":[true,"x"]}`+"\n" {
			t.Errorf("get cfg.x = %q", r.stdout)
		}
		m = s.run(t, "get", "cfg.x", "--json").want(t, exitOK).doc(t)
		if v, ok := m["value"].(map[string]any); !ok || v["a"] != float64(1) {
			t.Errorf("get --json of an object = %v", m)
		}
		type cfg struct {
			A int
			B []any
		}
		if v, _, err := cache.GetAs[cfg](t.Context(), s.c, "cfg.x"); err != nil || v.A != 1 || len(v.B) != 2 {
			t.Errorf("GetAs[cfg] = %+v, %v", v, err)
		}
		// A value a Go program wrote.
		if err := s.c.Set(t.Context(), "go.struct", cfg{A: 7}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if r := s.run(t, "get", "go.struct").want(t, exitOK); r.stdout != `{"A":7,"B":null}`+"\n" {
			t.Errorf("get of a Go struct = %q", r.stdout)
		}

		// set --json: the key and the TTL.
		m = s.run(t, "set", "k.ttl", "v", "--ttl", "90", "--json").want(t, exitOK).doc(t)
		if m["key"] != "k.ttl" || m["ttl_ms"] != float64(90000) {
			t.Errorf("set --json = %v", m)
		}

		// Missing keys: exit 3, and with --json a document that says so.
		r := s.run(t, "get", "nope").want(t, exitNotFound)
		if r.stdout != "" || !strings.Contains(r.stderr, "not found") {
			t.Errorf("get nope: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		m = s.run(t, "get", "nope", "--json").want(t, exitNotFound).doc(t)
		if m["key"] != "nope" || m["found"] != false {
			t.Errorf("get --json of a missing key = %v", m)
		}

		s.run(t, "set", "bad", "{", "--json-value").want(t, exitUsage)
	})
}

func TestTTL(t *testing.T) {
	stores(t, func(t *testing.T, s *store) {
		s.run(t, "set", "a", "1", "--ttl", "1m").want(t, exitOK)
		s.run(t, "set", "forever", "1").want(t, exitOK)
		r := s.run(t, "ttl", "a").want(t, exitOK)
		if d, err := time.ParseDuration(strings.TrimSpace(r.stdout)); err != nil || d <= 50*time.Second || d > time.Minute {
			t.Errorf("ttl a = %q; want about 1m", r.stdout)
		}
		m := s.run(t, "ttl", "a", "--json").want(t, exitOK).doc(t)
		if ms, _ := m["ttl_ms"].(float64); m["found"] != true || ms <= 50000 || ms > 60000 {
			t.Errorf("ttl --json = %v", m)
		}
		if r := s.run(t, "ttl", "forever").want(t, exitOK); r.stdout != "none\n" {
			t.Errorf("ttl of a key without expiry = %q; want none", r.stdout)
		}
		m = s.run(t, "ttl", "forever", "--json").want(t, exitOK).doc(t)
		if m["found"] != true || m["ttl_ms"] != float64(0) {
			t.Errorf("ttl --json of a key without expiry = %v", m)
		}
		m = s.run(t, "ttl", "nope", "--json").want(t, exitNotFound).doc(t)
		if m["found"] != false {
			t.Errorf("ttl --json of a missing key = %v", m)
		}
	})
}

func TestDel(t *testing.T) {
	stores(t, func(t *testing.T, s *store) {
		s.run(t, "set", "a", "1").want(t, exitOK)
		s.run(t, "set", "b", "1").want(t, exitOK)
		m := s.run(t, "del", "a", "nope", "--json").want(t, exitOK).doc(t)
		if m["removed"] != float64(1) || len(m["keys"].([]any)) != 2 {
			t.Errorf("del --json = %v", m)
		}
		s.run(t, "get", "a").want(t, exitNotFound)
		if r := s.run(t, "del", "b").want(t, exitOK); r.stdout != "" {
			t.Errorf("del printed %q", r.stdout)
		}
		s.run(t, "get", "b").want(t, exitNotFound)
		s.run(t, "del").want(t, exitUsage)
	})
}

func TestKeysAndStats(t *testing.T) {
	stores(t, func(t *testing.T, s *store) {
		for _, k := range []string{"user.2", "user.1", "user.1.avatar", "order.9", "solo"} {
			s.run(t, "set", k, "v").want(t, exitOK)
		}
		if r := s.run(t, "keys", "user").want(t, exitOK); r.stdout != "user.1\nuser.1.avatar\nuser.2\n" {
			t.Errorf("keys user = %q", r.stdout)
		}
		m := s.run(t, "keys", "--json").want(t, exitOK).doc(t)
		if m["count"] != float64(5) || m["namespace"] != "" || fmt.Sprint(m["keys"]) != "[order.9 solo user.1 user.1.avatar user.2]" {
			t.Errorf("keys --json = %v", m)
		}
		m = s.run(t, "keys", "nothing.here", "--json").want(t, exitOK).doc(t)
		if m["count"] != float64(0) || m["keys"] == nil {
			t.Errorf("keys --json of an empty namespace = %v; want count 0 and an empty list", m)
		}

		m = s.run(t, "stats", "--json").want(t, exitOK).doc(t)
		if m["keys"] != float64(5) || m["driver"] != "default" {
			t.Errorf("stats --json = %v", m)
		}
		if got := fmt.Sprint(m["namespaces"]); got != "[map[keys:1 namespace:] map[keys:1 namespace:order] map[keys:3 namespace:user]]" {
			t.Errorf("stats namespaces = %s", got)
		}
		r := s.run(t, "stats").want(t, exitOK)
		for _, want := range []string{"keys", "user", "3", "(none)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stats = %q; want it to contain %q", r.stdout, want)
			}
		}
	})
}

func TestLocksAndUnlock(t *testing.T) {
	stores(t, func(t *testing.T, s *store) {
		ctx := t.Context()
		h, err := cache.Acquire(ctx, s.c, "lock.nightly", cache.LockOptions{TTL: time.Minute, Owner: "worker-7"})
		if err != nil {
			t.Fatal(err)
		}
		s.run(t, "set", "lock.plain", "not a lock").want(t, exitOK)

		m := s.run(t, "locks", "--json").want(t, exitOK).doc(t)
		locks, _ := m["locks"].([]any)
		if m["count"] != float64(1) || len(locks) != 1 {
			t.Fatalf("locks --json = %v; want the one lock", m)
		}
		l := locks[0].(map[string]any)
		if l["key"] != "lock.nightly" || l["owner"] != "worker-7" || l["token"] != h.Token() {
			t.Errorf("lock = %v", l)
		}
		if ms, _ := l["ttl_ms"].(float64); ms <= 50000 || ms > 60000 {
			t.Errorf("lock ttl_ms = %v; want about 60000", l["ttl_ms"])
		}
		r := s.run(t, "locks", "lock").want(t, exitOK)
		for _, want := range []string{"KEY", "OWNER", "lock.nightly", "worker-7", h.Token()} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("locks = %q; want it to contain %q", r.stdout, want)
			}
		}
		if m := s.run(t, "locks", "other", "--json").want(t, exitOK).doc(t); m["count"] != float64(0) || m["locks"] == nil {
			t.Errorf("locks --json of another namespace = %v", m)
		}

		// lock on a held key: exit 4, and the holder.
		r = s.run(t, "lock", "lock.nightly", "--ttl", "1m", "--json").want(t, exitHeld)
		m = r.doc(t)
		if holder, _ := m["holder"].(map[string]any); m["acquired"] != false || holder["owner"] != "worker-7" {
			t.Errorf("lock --json of a held key = %v", m)
		}
		if r := s.run(t, "lock", "lock.nightly", "--ttl", "1m").want(t, exitHeld); !strings.Contains(r.stderr, "worker-7") {
			t.Errorf("lock of a held key: stderr %q; want the owner", r.stderr)
		}

		s.run(t, "unlock", "lock.nightly").want(t, exitUsage)
		s.run(t, "unlock", "lock.nightly", "--force", "--token", h.Token()).want(t, exitUsage)
		m = s.run(t, "unlock", "lock.nightly", "--token", "someone#ELSE", "--json").want(t, exitHeld).doc(t)
		if m["released"] != false || m["owner"] != "worker-7" {
			t.Errorf("unlock --token of another's lock = %v", m)
		}
		m = s.run(t, "unlock", "lock.nightly", "--force", "--json").want(t, exitOK).doc(t)
		if m["released"] != true || m["owner"] != "worker-7" || m["token"] != h.Token() {
			t.Errorf("unlock --force --json = %v", m)
		}
		if err := h.Release(ctx); err == nil {
			t.Error("the holder's Release after a force release succeeded")
		}
		if m := s.run(t, "locks", "--json").want(t, exitOK).doc(t); m["count"] != float64(0) {
			t.Errorf("locks after unlock = %v", m)
		}
		if r := s.run(t, "locks").want(t, exitOK); r.stdout != "" || !strings.Contains(r.stderr, "no locks") {
			t.Errorf("locks with none: stdout %q, stderr %q", r.stdout, r.stderr)
		}

		// Nothing to unlock: exit 3.
		m = s.run(t, "unlock", "lock.nightly", "--force", "--json").want(t, exitNotFound).doc(t)
		if m["released"] != false {
			t.Errorf("unlock of a free key = %v", m)
		}
		if r := s.run(t, "unlock", "lock.plain", "--force").want(t, exitNotFound); !strings.Contains(r.stderr, "not a lock") {
			t.Errorf("unlock of a plain value: stderr %q", r.stderr)
		}
		s.run(t, "get", "lock.plain").want(t, exitOK) // left alone

		// unlock --token releases the holder's own lock.
		h2, err := cache.Acquire(ctx, s.c, "lock.nightly", cache.LockOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		s.run(t, "unlock", "lock.nightly", "--token", h2.Token()).want(t, exitOK)
		if _, err := cache.Acquire(ctx, s.c, "lock.nightly", cache.LockOptions{TTL: time.Minute}); err != nil {
			t.Errorf("Acquire after unlock --token: %v", err)
		}
	})
}

func TestLockCommand(t *testing.T) {
	stores(t, func(t *testing.T, s *store) {
		// Held until the context ends (a signal, in the process), then released.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		tokens := make(chan string, 1)
		done := make(chan result, 1)
		go func() {
			done <- s.runCtx(ctx, func(tok string) { tokens <- tok },
				append([]string{"lock", "lock.job", "--ttl", "1m", "--owner", "op-1", "--json"}, s.args...)...)
		}()
		var token string
		select {
		case token = <-tokens:
		case r := <-done:
			t.Fatalf("lock returned before holding: %+v", r)
		case <-time.After(hangAfter):
			t.Fatal("lock did not take the lock")
		}
		if !strings.HasPrefix(token, "op-1#") {
			t.Errorf("token %q; want it to start with the owner", token)
		}
		info, err := cache.InspectLock(t.Context(), s.c, "lock.job")
		if err != nil || !info.Held || info.Token != token {
			t.Fatalf("InspectLock while cachectl holds it = %+v, %v", info, err)
		}
		cancel()
		var r result
		select {
		case r = <-done:
		case <-time.After(hangAfter):
			t.Fatal("lock did not return after its context ended")
		}
		r.want(t, exitOK)
		m := r.doc(t)
		if m["acquired"] != true || m["token"] != token || m["owner"] != "op-1" || m["ttl_ms"] != float64(60000) {
			t.Errorf("lock --json = %v", m)
		}
		if !strings.Contains(r.stderr, "released") {
			t.Errorf("lock stderr = %q; want it to say it released", r.stderr)
		}
		if info, err := cache.InspectLock(t.Context(), s.c, "lock.job"); err != nil || info.Held {
			t.Errorf("after lock returned: %+v, %v; want it released", info, err)
		}

		// --hold ends it by itself, renewing meanwhile: held for more than three TTLs. A
		// holder that a busy machine starves for a TTL loses its lock, correctly, and
		// says so: the run is then inconclusive, and runs again with a TTL twice as long,
		// up to about 10 s: a starvation that long is a hang, not a busy machine.
		for ttl := 150 * time.Millisecond; ; ttl *= 2 {
			r = s.run(t, "lock", "lock.short", "--ttl", ttl.String(), "--hold", (10 * ttl / 3).String())
			lost := strings.Contains(r.stderr, "force-released or expired") || strings.Contains(r.stderr, "renewals failed for a whole TTL")
			if r.code == exitFailure && lost && ttl < 10*time.Second {
				t.Logf("TTL %v: the holder lost its lock (a busy machine?): %q; again with a TTL of %v", ttl, r.stderr, 2*ttl)
				continue
			}
			r.want(t, exitOK)
			break
		}
		if !strings.HasPrefix(r.stdout, "cachectl.") {
			t.Errorf("lock printed %q; want the token with the default owner", r.stdout)
		}
		if info, _ := cache.InspectLock(t.Context(), s.c, "lock.short"); info.Held {
			t.Errorf("lock.short still held after --hold: %+v", info)
		}

		// A force release while held: the holder sees the lock lost at its next renewal.
		// A holder that a busy machine starves for a TTL loses the lock before the force
		// release comes (unlock finds none): inconclusive, and again with a TTL twice as
		// long, up to about 10 s.
		for ttl := 300 * time.Millisecond; ; ttl *= 2 {
			hctx, hcancel := context.WithCancel(t.Context())
			defer hcancel()
			tokens = make(chan string, 1)
			go func() {
				done <- s.runCtx(hctx, func(tok string) { tokens <- tok },
					append([]string{"lock", "lock.lost", "--ttl", ttl.String(), "--hold", "1m"}, s.args...)...)
			}()
			select {
			case <-tokens:
			case r := <-done:
				t.Fatalf("lock returned before holding: %+v", r)
			case <-time.After(hangAfter):
				t.Fatal("lock did not take the lock")
			}
			u := s.run(t, "unlock", "lock.lost", "--force")
			if u.code == exitNotFound && ttl < 10*time.Second {
				hcancel()
				<-done
				t.Logf("TTL %v: the lock expired before the force release (a busy machine?): %q; again with a TTL of %v", ttl, u.stderr, 2*ttl)
				continue
			}
			u.want(t, exitOK)
			break
		}
		select {
		case r = <-done:
		case <-time.After(hangAfter):
			t.Fatal("the holder did not notice that its lock was force-released")
		}
		r.want(t, exitFailure)
		if !strings.Contains(r.stderr, "lost") || !strings.Contains(r.stderr, "force-released") {
			t.Errorf("holder stderr = %q; want it to say the lock was lost", r.stderr)
		}

		s.run(t, "lock", "lock.x").want(t, exitUsage) // no --ttl
		s.run(t, "lock", "lock.x", "--ttl", "-1s").want(t, exitUsage)
	})
}

func TestLockWait(t *testing.T) {
	s := memoryStore(t)
	h, err := cache.Acquire(t.Context(), s.c, "w", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { _ = h.Release(context.Background()) })
	s.run(t, "lock", "w", "--ttl", "1m", "--wait", hangAfter.String(), "--hold", "1ms").want(t, exitOK)
	if _, err := cache.Acquire(t.Context(), s.c, "w", cache.LockOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	s.run(t, "lock", "w", "--ttl", "1m", "--wait", "50ms").want(t, exitHeld)
}

func TestEnvironment(t *testing.T) {
	s := memoryStore(t)
	s.env = map[string]string{"CACHE_DRIVERS": "main=" + memURL + "; other=memory://", "CACHE_DEFAULT": "main", "CACHE_PREFIX": "app"}
	s.bare(t, "set", "k", "v").want(t, exitOK)
	if v, found, _ := cache.GetAs[string](t.Context(), s.c, "app.k"); !found || v != "v" {
		t.Errorf("CACHE_PREFIX: app.k = %q, %v", v, found)
	}
	s.bare(t, "set", "k", "w", "--prefix", "").want(t, exitOK)
	if v, found, _ := cache.GetAs[string](t.Context(), s.c, "k"); !found || v != "w" {
		t.Errorf("--prefix \"\": k = %q, %v", v, found)
	}
	if r := s.bare(t, "keys").want(t, exitOK); r.stdout != "k\n" {
		t.Errorf("keys under CACHE_PREFIX = %q; want the key without the prefix", r.stdout)
	}
	// --driver other: a separate (empty) store.
	s.bare(t, "get", "k", "--driver", "other").want(t, exitNotFound)
	s.bare(t, "get", "k", "--driver", "nope").want(t, exitUsage)
	m := s.bare(t, "stats", "--json").want(t, exitOK).doc(t)
	if m["driver"] != "main" || m["prefix"] != "app" {
		t.Errorf("stats --json = %v", m)
	}

	s.env = map[string]string{"CACHE_DRIVERS": "redis://127.0.0.1:1/0?bogus=1"}
	if r := s.bare(t, "get", "k").want(t, exitUsage); !strings.Contains(r.stderr, "bogus") {
		t.Errorf("bad CACHE_DRIVERS: stderr %q", r.stderr)
	}
	s.env = map[string]string{"CACHE_DRIVERS": "redis://127.0.0.1:1/0?near=bogus"}
	if r := s.bare(t, "get", "k").want(t, exitUsage); !strings.Contains(r.stderr, `CACHE_DRIVERS: driver "default"`) || !strings.Contains(r.stderr, "parameter near") {
		t.Errorf("CACHE_DRIVERS with near=bogus: stderr %q; want it to name CACHE_DRIVERS and near", r.stderr)
	}
	if r := s.bare(t, "get", "k", "--url", "redis://127.0.0.1:1/0?near=bogus").want(t, exitUsage); !strings.Contains(r.stderr, "--url") || !strings.Contains(r.stderr, "parameter near") {
		t.Errorf("--url with near=bogus: stderr %q; want it to name --url and near", r.stderr)
	}
	s.env = map[string]string{"CACHE_DRIVERS": "redis://user:s3cret@127.0.0.1:1/0?nope=1"}
	if r := s.bare(t, "keys").want(t, exitUsage); strings.Contains(r.stderr, "s3cret") {
		t.Errorf("the password shows in %q", r.stderr)
	}
	s.env = map[string]string{}
	if r := s.bare(t, "get", "k").want(t, exitUsage); !strings.Contains(r.stderr, "CACHE_DRIVERS") {
		t.Errorf("no store: stderr %q; want it to name CACHE_DRIVERS", r.stderr)
	}
}

func TestUsageAndFailures(t *testing.T) {
	s := memoryStore(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"get"}, exitUsage},
		{[]string{"get", "a", "b"}, exitUsage},
		{[]string{"set", "a"}, exitUsage},
		{[]string{"set", "a", "v", "--ttl", "soon"}, exitUsage},
		{[]string{"keys", "a", "b"}, exitUsage},
		{[]string{"stats", "x"}, exitUsage},
		{[]string{"get", "--bogus", "a"}, exitUsage},
		{[]string{"get", "a", "--url", "bogus://x"}, exitUsage},
		{[]string{"get", "a", "--url", memURL, "--driver", "other"}, exitUsage},
		{[]string{"get", "-h"}, exitOK},
	} {
		if r := s.bare(t, tc.args...); r.code != tc.code {
			t.Errorf("cachectl %q = %d; want %d\nstderr: %s", tc.args, r.code, tc.code, r.stderr)
		} else if tc.code == exitUsage && r.stdout != "" {
			t.Errorf("cachectl %q: a usage error printed %q on stdout", tc.args, r.stdout)
		}
	}
	// Flags before the command, and arguments after "--".
	s.bare(t, "--url", memURL, "set", "--", "-dash", "v").want(t, exitOK)
	if r := s.bare(t, "--url", memURL, "get", "--", "-dash").want(t, exitOK); r.stdout != "v\n" {
		t.Errorf("get -- -dash = %q", r.stdout)
	}
	if r := s.bare(t, "help", "lock").want(t, exitOK); !strings.Contains(r.stdout, "--ttl") {
		t.Errorf("help lock = %q", r.stdout)
	}

	// What a driver cannot do is an operational failure: the null driver keeps no TTLs.
	if r := s.bare(t, "ttl", "k", "--url", "null://").want(t, exitFailure); !strings.Contains(r.stderr, "cannot") {
		t.Errorf("ttl on the null driver: stderr %q", r.stderr)
	}

	// A store that does not answer: exit 1, and with --json an error document.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "redis://" + l.Addr().String() + "/0?max_retries=-1" // fail at once
	_ = l.Close()
	for _, cmd := range [][]string{{"get", "k"}, {"set", "k", "v"}, {"keys"}, {"locks"}, {"lock", "k", "--ttl", "1m"}, {"unlock", "k", "--force"}, {"stats"}, {"ttl", "k"}, {"del", "k"}} {
		r := s.bare(t, append(cmd, "--url", down, "--json", "--timeout", "5s")...).want(t, exitFailure)
		if m := r.doc(t); m["error"] == nil || m["error"] == "" {
			t.Errorf("cachectl %q on a down Redis: %v; want an error document", cmd, m)
		}
		if r.stderr == "" {
			t.Errorf("cachectl %q on a down Redis printed nothing on stderr", cmd)
		}
	}
}

// TestFileDriver: the file driver keeps its keys across runs, as across processes.
func TestFileDriver(t *testing.T) {
	s := &store{name: "file", args: []string{"--url", "file://" + t.TempDir()}, env: map[string]string{}, open: registry.Open}
	s.run(t, "set", "user.1", "alice", "--ttl", "1h").want(t, exitOK)
	s.run(t, "lock", "lock.job", "--ttl", "1m", "--hold", "1ms").want(t, exitOK)
	if r := s.run(t, "get", "user.1").want(t, exitOK); r.stdout != "alice\n" {
		t.Errorf("get = %q", r.stdout)
	}
	if r := s.run(t, "keys").want(t, exitOK); !strings.Contains(r.stdout, "user.1\n") {
		t.Errorf("keys = %q", r.stdout)
	}
	if m := s.run(t, "ttl", "user.1", "--json").want(t, exitOK).doc(t); m["ttl_ms"].(float64) <= 3500000 {
		t.Errorf("ttl --json = %v", m)
	}
	if m := s.run(t, "locks", "--json").want(t, exitOK).doc(t); m["count"] != float64(0) {
		t.Errorf("locks after the lock command released = %v", m)
	}
}

// TestRedisClusterKeys lists keys and locks across the masters of a Redis Cluster.
func TestRedisClusterKeys(t *testing.T) {
	if redistest.Binary() == "" && !redistest.InCI() {
		t.Skip("no redis-server: the Cluster needs one")
	}
	u := redistest.ClusterURL(t)
	prefix := fmt.Sprintf("cachectl-cluster-%d", time.Now().UnixNano())
	s := &store{name: "cluster", args: []string{"--url", u, "--prefix", prefix}, env: map[string]string{}, open: registry.Open}
	d, err := registry.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"default": d}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Flush(context.Background()); _ = c.Close() })
	s.c = c
	for i := range 30 { // spread over the slots, so over the masters
		s.run(t, "set", fmt.Sprintf("k.%02d", i), "v").want(t, exitOK)
	}
	if _, err := cache.Acquire(t.Context(), c, "lock.a", cache.LockOptions{TTL: time.Minute, Owner: "o"}); err != nil {
		t.Fatal(err)
	}
	if m := s.run(t, "keys", "k", "--json").want(t, exitOK).doc(t); m["count"] != float64(30) {
		t.Errorf("keys on the Cluster: count %v; want 30", m["count"])
	}
	if m := s.run(t, "locks", "--json").want(t, exitOK).doc(t); m["count"] != float64(1) {
		t.Errorf("locks on the Cluster = %v; want 1", m)
	}
}

func init() { redis.SetLogger(quietRedis{}) } // as main does

// TestConfigErrors: a bad configuration is a usage error whose message names what the
// user gave (--driver, --prefix, the CACHE_* variables), never a Go field.
func TestConfigErrors(t *testing.T) {
	s := memoryStore(t)
	two := "main=" + memURL + "; other=memory://"
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{map[string]string{"CACHE_DRIVERS": two}, nil, []string{"CACHE_DRIVERS names 2 drivers (main, other)", "--driver", "CACHE_DEFAULT"}},
		{map[string]string{"CACHE_DRIVERS": two, "CACHE_DEFAULT": "mian"}, nil, []string{`CACHE_DEFAULT "mian"`, "main, other", `did you mean "main"?`}},
		{map[string]string{"CACHE_DRIVERS": two, "CACHE_DEFAULT": "main"}, []string{"--driver", "nope"}, []string{`--driver "nope"`, "main, other"}},
		{map[string]string{"CACHE_DRIVERS": two}, []string{"--driver", "nope"}, []string{`--driver "nope"`}},
		{map[string]string{"CACHE_DRIVERS": two, "CACHE_DEFAULT": "main", "CACHE_PREFIX": "acme.eu"}, nil, []string{`CACHE_PREFIX "acme.eu"`, "separator"}},
		{map[string]string{"CACHE_DRIVERS": two, "CACHE_DEFAULT": "main"}, []string{"--prefix", "acme.eu"}, []string{`--prefix "acme.eu"`}},
		{map[string]string{}, []string{"--url", memURL, "--prefix", "a|b"}, []string{`--prefix "a|b"`}},
		{map[string]string{"CACHE_DRIVERS": two, "CACHE_DEFAULT": "main", "CACHE_METRICS": "yes"}, nil, []string{`CACHE_METRICS="yes"`, "true or false"}},
		{map[string]string{"CACHE_DRIVERS": "a=memory://;a=memory://"}, nil, []string{"CACHE_DRIVERS", `"a" is named twice`}},
	} {
		s.env = tc.env
		r := s.bare(t, append([]string{"keys"}, tc.args...)...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("env %v, args %q: exit %d, stdout %q; want a usage error", tc.env, tc.args, r.code, r.stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("env %v, args %q: stderr %q; want it to contain %q", tc.env, tc.args, r.stderr, w)
			}
		}
		for _, goName := range []string{"Default ", "Prefix ", "Metrics", "cache.Config"} {
			if strings.Contains(r.stderr, goName) {
				t.Errorf("env %v, args %q: stderr %q names the Go field %q", tc.env, tc.args, r.stderr, goName)
			}
		}
	}
	// The same environment with the choices made works, and --prefix wins over a bad
	// CACHE_PREFIX.
	s.env = map[string]string{"CACHE_DRIVERS": two, "CACHE_PREFIX": "acme.eu", "CACHE_METRICS": "true"}
	s.bare(t, "keys", "--driver", "main", "--prefix", "acme").want(t, exitOK)
}
