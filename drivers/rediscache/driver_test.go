package rediscache_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// scope returns a random key prefix, so that tests sharing one Redis never meet.
func scope(name string) string { return name + "-" + rand.Text()[:8] }

// newCache returns a cache over a fresh driver on url with the prefix, closed at cleanup.
func newCache(t *testing.T, url, prefix string) (*cache.Cache, *rediscache.Driver) {
	t.Helper()
	d, err := rediscache.New(rediscache.Options{URL: url})
	if err != nil {
		t.Fatalf("rediscache.New: %v", err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if prefix != "" { // leave nothing behind in a Redis shared with others (REDIS_URL)
			_ = c.Flush(context.Background())
		}
		_ = c.Close()
	})
	return c, d
}

// cleanup deletes the namespace p at the end of the test (before d is closed).
func cleanup(t *testing.T, d *rediscache.Driver, p string) {
	t.Cleanup(func() { _ = d.DeleteNamespace(context.Background(), p) })
}

func forTargets(t *testing.T, f func(t *testing.T, url string)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { f(t, tg.url(t)) })
	}
}

// TestWireFormat: the key is exactly the final key, the value the codec's bytes with no
// envelope, expiry Redis's own TTL, a counter a bare integer, a lock a JSON string that
// starts with the owner. Services in other languages read and write these.
func TestWireFormat(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("wire")
		c, d := newCache(t, url, p)
		raw := d.Client()

		get := func(key string) string {
			t.Helper()
			s, err := raw.Get(ctx, key).Result()
			if err != nil {
				t.Fatalf("raw GET %s: %v", key, err)
			}
			return s
		}
		if err := c.Set(ctx, "s", "abc", time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := get(p + ".s"); got != `"abc"` {
			t.Errorf("raw GET of a Go string = %s; want \"abc\" (a JSON string)", got)
		}
		type user struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		}
		if err := c.Set(ctx, "u", user{7, "Ada"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(user{7, "Ada"})
		if got := get(p + ".u"); got != string(want) {
			t.Errorf("raw GET of a struct = %s; want %s, no envelope", got, want)
		}
		if ttl := raw.PTTL(ctx, p+".u").Val(); ttl <= 59*time.Second || ttl > time.Minute {
			t.Errorf("PTTL after Set for 1m = %v; want Redis's own TTL of about 1m", ttl)
		}
		if err := c.Forever(ctx, "f", 1); err != nil {
			t.Fatal(err)
		}
		if ttl := raw.PTTL(ctx, p+".f").Val(); ttl != -1 {
			t.Errorf("PTTL after Forever = %v; want -1 (no expiry)", ttl)
		}

		// A counter is a bare integer, both ways.
		if _, err := c.Increment(ctx, "n", 5); err != nil {
			t.Fatal(err)
		}
		if got := get(p + ".n"); got != "5" {
			t.Errorf("raw GET of a counter = %q; want 5", got)
		}
		if err := raw.IncrBy(ctx, p+".n", 10).Err(); err != nil {
			t.Fatalf("raw INCRBY on a counter: %v", err)
		}
		if err := raw.Set(ctx, p+".m", "41", 0).Err(); err != nil { // written by another service
			t.Fatal(err)
		}
		var n int
		if found, err := c.Get(ctx, "n", &n); !found || err != nil || n != 15 {
			t.Errorf("Get of a counter that INCRBY moved = %d, %v, %v; want 15", n, found, err)
		}
		if got, err := c.Increment(ctx, "m", 1); got != 42 || err != nil {
			t.Errorf("Increment of a key another service SET to 41 = %d, %v; want 42", got, err)
		}

		// The lock key holds a JSON string that starts with the owner.
		_, err := cache.LockWith(ctx, c, "lock.report", cache.LockOptions{TTL: time.Minute, Owner: "worker.payments-2"},
			func(context.Context) (int, error) {
				s := get(p + ".lock.report")
				if !strings.HasPrefix(s, `"worker.payments-2#`) || !strings.HasSuffix(s, `"`) {
					t.Errorf("raw GET of a held lock = %s; want a JSON string starting with the owner", s)
				}
				if ttl := raw.PTTL(ctx, p+".lock.report").Val(); ttl <= 59*time.Second {
					t.Errorf("lock PTTL = %v; want about 1m", ttl)
				}
				return 0, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if n := raw.Exists(ctx, p+".lock.report").Val(); n != 0 {
			t.Error("the lock key is still there after Lock returned")
		}
	})
}

// TestSubMillisecondTTL: a TTL under 1 ms is 1 ms on Redis, never "no expiry", on every
// write path.
func TestSubMillisecondTTL(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		raw := d.Client()
		p := scope("ttl")
		cleanup(t, d, p)
		const ttl = 300 * time.Microsecond
		v := []byte(`"v"`)
		writes := map[string]func(key string) error{
			"Set": func(k string) error { return d.Set(ctx, driver.Entry{Key: k, Value: v, TTL: ttl}) },
			"SetIf": func(k string) error {
				_, err := d.SetIf(ctx, driver.Entry{Key: k, Value: v, TTL: ttl}, driver.IfAbsent)
				return err
			},
			"SetMany": func(k string) error { return d.SetMany(ctx, []driver.Entry{{Key: k, Value: v, TTL: ttl}}) },
			"Increment": func(k string) error {
				_, err := d.Increment(ctx, k, 1, ttl)
				return err
			},
			"CreateFenced": func(k string) error {
				_, _, err := d.CreateFenced(ctx, driver.Entry{Key: k, Value: v, TTL: ttl})
				return err
			},
			"CompareAndSwap": func(k string) error {
				if err := d.Set(ctx, driver.Entry{Key: k, Value: v}); err != nil {
					return err
				}
				_, err := d.CompareAndSwap(ctx, v, driver.Entry{Key: k, Value: v, TTL: ttl})
				return err
			},
			"Extend": func(k string) error {
				if err := d.Set(ctx, driver.Entry{Key: k, Value: v}); err != nil {
					return err
				}
				_, err := d.Extend(ctx, k, v, ttl)
				return err
			},
		}
		for name, write := range writes {
			k := p + "." + name
			if err := write(k); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if pttl := raw.PTTL(ctx, k).Val(); pttl == -1 {
				t.Errorf("%s with a TTL of %v stored a key with no expiry", name, ttl)
			}
			deadline := time.Now().Add(time.Second)
			for raw.Exists(ctx, k).Val() == 1 {
				if time.Now().After(deadline) {
					t.Errorf("%s with a TTL of %v: the key is still there after 1s", name, ttl)
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	})
}

// TestTTLRoundsUp: a TTL is rounded up to the next millisecond, never down: a lock must
// not expire before its TTL. 10 s + 1 ns is sent as PX 10001 (read from the command the
// client sent), and Redis keeps it: PTTL right after is at most 10001 ms.
func TestTTLRoundsUp(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, rediscache.Options{URL: redistest.URL(t)})
	sets := watchArgs(t, d.Client(), "set")
	k := scope("ttlup")
	if err := d.Set(ctx, driver.Entry{Key: k, Value: []byte("1"), TTL: 10*time.Second + time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	args := sets.get()
	if i := slices.IndexFunc(args, func(a any) bool { s, ok := a.(string); return ok && strings.EqualFold(s, "px") }); i < 0 || i+1 >= len(args) || args[i+1] != int64(10001) {
		t.Fatalf("SET sent as %v; want PX 10001 for a TTL of 10s+1ns (rounded up)", args)
	}
	if pttl := d.Client().PTTL(ctx, k).Val(); pttl <= 0 || pttl > 10001*time.Millisecond {
		t.Fatalf("PTTL right after a Set with TTL 10s+1ns = %v; want at most 10.001s", pttl)
	}
	_ = d.Delete(ctx, k)
}

// TestDeleteNamespace: the dot boundary holds, glob characters in the namespace are
// literal, and a namespace spread over many keys (more than one SCAN page and one UNLINK
// batch), over every master of a Cluster, is deleted whole.
func TestDeleteNamespace(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		p := scope("ns")
		set := func(keys ...string) {
			t.Helper()
			for _, k := range keys {
				if err := d.Set(ctx, driver.Entry{Key: p + "." + k, Value: []byte(`1`), TTL: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
		}
		exists := func(k string) bool {
			n, err := d.Client().Exists(ctx, p+"."+k).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		}
		cases := []struct {
			ns         string
			gone, kept []string
		}{
			{"users", []string{"users", "users.1", "users.1.x"}, []string{"usersX", "usersX.1", "user.1", "users_1", "x.users.1"}},
			{"a*b", []string{"a*b", "a*b.1"}, []string{"aXb", "aXb.1", "a*bc.1", "aaab.1"}},
			{"q?", []string{"q?", "q?.1"}, []string{"qX.1", "q.1"}},
			{"r[12]", []string{"r[12]", "r[12].x"}, []string{"r1.x", "r2.x"}},
			{`s\t`, []string{`s\t`, `s\t.1`}, []string{"st.1", `s\\t.1`}},
			{"{tag}ns", []string{"{tag}ns", "{tag}ns.1"}, []string{"{tag}nsX.1", "tagns.1"}},
		}
		for _, tc := range cases {
			set(tc.gone...)
			set(tc.kept...)
			if err := d.DeleteNamespace(ctx, p+"."+tc.ns); err != nil {
				t.Fatalf("DeleteNamespace(%q): %v", tc.ns, err)
			}
			for _, k := range tc.gone {
				if exists(k) {
					t.Errorf("DeleteNamespace(%q) left %q", tc.ns, k)
				}
			}
			for _, k := range tc.kept {
				if !exists(k) {
					t.Errorf("DeleteNamespace(%q) deleted %q", tc.ns, k)
				}
			}
		}

		// Many keys: several SCAN pages and UNLINK batches, on every master.
		const many = 2500
		entries := make([]driver.Entry, many)
		for i := range entries {
			entries[i] = driver.Entry{Key: fmt.Sprintf("%s.big.%d", p, i), Value: []byte(`1`), TTL: time.Minute}
		}
		if err := d.SetMany(ctx, entries); err != nil {
			t.Fatal(err)
		}
		set("bigger.1")
		if err := d.DeleteNamespace(ctx, p+".big"); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, many)
		for i := range keys {
			keys[i] = entries[i].Key
		}
		_, found, err := d.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, f := range found {
			if f {
				left++
			}
		}
		if left != 0 {
			t.Errorf("DeleteNamespace left %d of %d keys", left, many)
		}
		if !exists("bigger.1") {
			t.Error("DeleteNamespace(big) deleted bigger.1")
		}
		if err := d.DeleteNamespace(ctx, p); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFlush: without OwnsDatabase Flush refuses and deletes nothing; with it, FLUSHDB
// empties the database (every master of a Cluster).
func TestFlush(t *testing.T) {
	ctx := context.Background()
	t.Run("refused", func(t *testing.T) {
		url := redistest.URL(t)
		d := newDriver(t, rediscache.Options{URL: url})
		k := scope("flush")
		if err := d.Set(ctx, driver.Entry{Key: k, Value: []byte(`1`), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		err := d.Flush(ctx)
		if !errors.Is(err, rediscache.ErrSharedDatabase) || !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("Flush without OwnsDatabase = %v; want ErrSharedDatabase and errors.ErrUnsupported", err)
		}
		if !strings.Contains(err.Error(), "OwnsDatabase") {
			t.Errorf("the refusal does not say how to allow it: %v", err)
		}
		if _, found, _ := d.Get(ctx, k); !found {
			t.Fatal("a refused Flush deleted a key")
		}
		// Through the manager, a cache without a prefix gets the same refusal.
		c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(ctx); !errors.Is(err, cache.ErrUnsupported) {
			t.Fatalf("cache.Flush without a prefix = %v; want ErrUnsupported", err)
		}
		_ = d.Delete(ctx, k)
	})
	t.Run("single", func(t *testing.T) {
		srv := redistest.Start(t) // a database of its own: FLUSHDB must not hit the shared one
		d := newDriver(t, rediscache.Options{URL: srv.URL(), OwnsDatabase: true})
		for i := range 10 {
			if err := d.Set(ctx, driver.Entry{Key: "k" + strconv.Itoa(i), Value: []byte(`1`)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := d.Client().DBSize(ctx).Val(); n != 0 {
			t.Fatalf("DBSIZE after Flush = %d; want 0", n)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		url := redistest.ClusterURL(t)
		if !redistest.ClusterOwned() {
			t.Skip("the Cluster comes from REDIS_CLUSTER_URL: not ours to flush")
		}
		d := newDriver(t, rediscache.Options{URL: url, OwnsDatabase: true})
		for i := range 50 { // spread over the masters
			if err := d.Set(ctx, driver.Entry{Key: scope("k") + strconv.Itoa(i), Value: []byte(`1`)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cc := d.Client().(*redis.ClusterClient)
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			if size := n.DBSize(ctx).Val(); size != 0 {
				return fmt.Errorf("master %s holds %d keys after Flush", n.Options().Addr, size)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBadURL: a URL that cannot work is a clear error from New, and never repeats the
// password.
func TestBadURL(t *testing.T) {
	const pw = "s3cr3tPW"
	bad := []string{
		"redis://user:" + pw + "@localhost:6379/notadb",
		"redis://:" + pw + "@localhost:6379/0/1",
		"redis://:" + pw + "@localhost:6379/0?bogus=1",
		"redis://:" + pw + "@localhost:6379/0?dial_timeout=forever",
		"ftp://:" + pw + "@localhost:6379",
		"redis://:" + pw + "@local host:6379",
		"redis://:s3/cr3tPW@localhost:6379",
		"redis://:" + pw + "@localhost:99999999",
		"%zz://:" + pw + "@localhost",
		"redis+cluster://:" + pw + "@h1:1/2",
		"redis://:" + pw + "@h1:1,h2:2,/0",
		"redis://:" + pw + "@h1:1,h2:2?bogus=" + pw,
		"redis://localhost:6379/0?password=" + pw,
		"localhost:6379",
	}
	for _, u := range bad {
		d, err := rediscache.New(rediscache.Options{URL: u})
		if err == nil {
			_ = d.Close()
			t.Errorf("New(URL %q): no error", u)
			continue
		}
		for _, secret := range []string{pw, "cr3tPW", "s3/cr3t"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("New(URL %q) error repeats the password: %v", u, err)
			}
		}
		if !strings.HasPrefix(err.Error(), "rediscache: ") {
			t.Errorf("New(URL %q) error = %v; want it to start with rediscache:", u, err)
		}
	}
	if _, err := rediscache.New(rediscache.Options{}); err == nil {
		t.Error("New with neither Client nor URL: no error")
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	if _, err := rediscache.New(rediscache.Options{Client: rdb, URL: "redis://localhost"}); err == nil {
		t.Error("New with both Client and URL: no error")
	}
	if _, err := rediscache.New(rediscache.Options{Client: rdb, DefaultTTL: -time.Second}); err == nil {
		t.Error("New with a negative DefaultTTL: no error")
	}
}

// TestURLForms: each URL form makes the client it says, and the Cluster forms reach the
// Cluster.
func TestURLForms(t *testing.T) {
	type kind int
	const (
		single kind = iota
		clustered
	)
	forms := map[string]kind{
		"redis://localhost:6379/3":                 single,
		"redis://user:pw@localhost:6379/0":         single,
		"rediss://localhost:6380/0":                single,
		"unix:///tmp/redis.sock?db=2":              single,
		"redis://h1:1,h2:2,h3:3":                   clustered,
		"redis://:pw@h1:1,h2:2/0?dial_timeout=3s":  clustered,
		"redis://h1:1?addr=h2:2&addr=h3:3":         clustered,
		"redis+cluster://h1:1":                     clustered,
		"rediss+cluster://:pw@h1:1?read_timeout=2": clustered,
	}
	for u, want := range forms {
		d, err := rediscache.New(rediscache.Options{URL: u})
		if err != nil {
			t.Errorf("New(URL %q): %v", u, err)
			continue
		}
		switch c := d.Client().(type) {
		case *redis.Client:
			if want != single {
				t.Errorf("New(URL %q) made a single-node client; want a Cluster client", u)
			}
			if strings.HasPrefix(u, "rediss") && c.Options().TLSConfig == nil {
				t.Errorf("New(URL %q): no TLS", u)
			}
		case *redis.ClusterClient:
			if want != clustered {
				t.Errorf("New(URL %q) made a Cluster client; want a single-node client", u)
			}
			if strings.HasPrefix(u, "rediss") && c.Options().TLSConfig == nil {
				t.Errorf("New(URL %q): no TLS", u)
			}
		default:
			t.Errorf("New(URL %q) made a %T", u, c)
		}
		_ = d.Close()
	}

	// Every Cluster form reaches the test Cluster.
	ctx := context.Background()
	curl := redistest.ClusterURL(t)
	o, err := redis.ParseClusterURL(curl)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		curl,
		"redis://" + strings.Join(o.Addrs, ","),
		"redis+cluster://" + o.Addrs[1],
	} {
		d := newDriver(t, rediscache.Options{URL: u})
		if _, ok := d.Client().(*redis.ClusterClient); !ok {
			t.Fatalf("URL %q made a %T", u, d.Client())
		}
		k := scope("form")
		if err := d.Set(ctx, driver.Entry{Key: k, Value: []byte(`1`), TTL: time.Minute}); err != nil {
			t.Fatalf("URL %q: Set: %v", u, err)
		}
		if err := d.Delete(ctx, k); err != nil {
			t.Fatalf("URL %q: Delete: %v", u, err)
		}
	}
}

// TestGetManyAcrossSlots: on a Cluster, keys in many hash slots (and on every master)
// are read and written in one call; a plain MGET of the same keys fails with CROSSSLOT,
// which is what the per-slot split avoids.
func TestGetManyAcrossSlots(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, rediscache.Options{URL: redistest.ClusterURL(t)})
	p := scope("many")
	cleanup(t, d, p)
	var entries []driver.Entry
	var keys []string
	for i := range 300 {
		k := fmt.Sprintf("%s.%d", p, i)
		if i%10 == 0 {
			k = fmt.Sprintf("%s.{tag}.%d", p, i) // a few share a hash tag
		}
		keys = append(keys, k)
		if i%3 != 0 { // every third key stays missing
			entries = append(entries, driver.Entry{Key: k, Value: []byte(strconv.Itoa(i)), TTL: time.Minute})
		}
	}
	if err := d.SetMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	vals, found, err := d.GetMany(ctx, keys)
	if err != nil {
		t.Fatalf("GetMany across slots: %v", err)
	}
	for i, k := range keys {
		if want := i%3 != 0; found[i] != want {
			t.Fatalf("GetMany: %s found = %v; want %v", k, found[i], want)
		}
		if found[i] && string(vals[i].([]byte)) != strconv.Itoa(i) {
			t.Fatalf("GetMany: %s = %s; want %d", k, vals[i], i)
		}
	}
	if err := d.Client().MGet(ctx, keys[:50]...).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Logf("note: a raw MGET across slots gave %v (go-redis may split it itself)", err)
	}
	if err := d.Delete(ctx, keys...); err != nil {
		t.Fatalf("Delete across slots: %v", err)
	}
	if _, found, _ := d.GetMany(ctx, keys); found[1] {
		t.Fatal("Delete across slots left keys")
	}
	// Through the manager, too.
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	items := map[string]any{}
	for i := range 100 {
		items["k"+strconv.Itoa(i)] = i
	}
	if err := c.SetMany(ctx, items, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := cache.Many[int](ctx, c, "k0", "k1", "k50", "k99", "missing")
	if err != nil || len(got) != 4 || got["k50"] != 50 {
		t.Fatalf("Many = %v, %v", got, err)
	}
}

// TestIncrement: Redis semantics of counters beyond the conformance suite: exact 64-bit
// results on the script path, the TTL of a new counter set in the same step, overflow and
// wrong types as ErrNotInteger with the value left alone.
func TestIncrement(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		raw := d.Client()
		p := scope("incr")

		// Above 2^53 a Lua number loses precision: the script must return the exact value.
		big := int64(1)<<62 + 1
		raw.Set(ctx, p+".big", big, time.Minute)
		if n, err := d.Increment(ctx, p+".big", 2, time.Minute); n != big+2 || err != nil {
			t.Errorf("Increment of 2^62+1 by 2 = %d, %v; want %d", n, err, big+2)
		}
		if n, err := d.Increment(ctx, p+".big", -big-2, time.Minute); n != 0 || err != nil {
			t.Errorf("Decrement to 0 = %d, %v; want 0", n, err)
		}

		// A new counter gets ttlIfNew in the same step; an existing one keeps its TTL.
		if _, err := d.Increment(ctx, p+".new", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		if ttl := raw.PTTL(ctx, p+".new").Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL of a new counter = %v; want about 1m", ttl)
		}
		raw.Set(ctx, p+".old", 1, 0)
		if _, err := d.Increment(ctx, p+".old", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		if ttl := raw.PTTL(ctx, p+".old").Val(); ttl != -1 {
			t.Errorf("PTTL of an existing counter without TTL after Increment = %v; want -1 (kept)", ttl)
		}
		if _, err := d.Increment(ctx, p+".plain", -3, 0); err != nil {
			t.Fatal(err)
		}
		if got := raw.Get(ctx, p+".plain").Val(); got != "-3" {
			t.Errorf("DECRBY path: counter = %q; want -3", got)
		}

		// Not integers: left as they were.
		raw.Set(ctx, p+".max", int64(math.MaxInt64), time.Minute)
		raw.Set(ctx, p+".text", `"text"`, time.Minute)
		raw.Set(ctx, p+".float", "1.5", time.Minute)
		raw.RPush(ctx, p+".list", "a")
		raw.Expire(ctx, p+".list", time.Minute)
		for _, k := range []string{"max", "text", "float", "list"} {
			for _, ttl := range []time.Duration{0, time.Minute} {
				_, err := d.Increment(ctx, p+"."+k, 1, ttl)
				if !errors.Is(err, driver.ErrNotInteger) {
					t.Errorf("Increment of %s (ttlIfNew %v) = %v; want ErrNotInteger", k, ttl, err)
				}
			}
		}
		if got := raw.Get(ctx, p+".max").Val(); got != strconv.FormatInt(math.MaxInt64, 10) {
			t.Errorf("an overflowing Increment changed the value to %s", got)
		}
		if n, err := d.Increment(ctx, p+".min", math.MinInt64, 0); n != math.MinInt64 || err != nil {
			t.Errorf("Increment by MinInt64 = %d, %v", n, err)
		}
		_ = d.DeleteNamespace(ctx, p)
	})
}

// TestClose: after Close every method fails with ErrClosed; a driver closes the client it
// built and never one it was given.
func TestClose(t *testing.T) {
	ctx := context.Background()
	url := redistest.URL(t)
	o, _ := redis.ParseURL(url)
	given := redis.NewClient(o)
	defer given.Close()
	d, err := rediscache.New(rediscache.Options{Client: given})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Watch(ctx, scope("w")); err != nil { // starts the subscriber
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if err := given.Ping(ctx).Err(); err != nil {
		t.Fatalf("the driver closed a client it was given: %v", err)
	}
	k := scope("closed")
	v := []byte(`1`)
	e := driver.Entry{Key: k, Value: v}
	calls := map[string]error{}
	_, _, calls["Get"] = d.Get(ctx, k)
	calls["Set"] = d.Set(ctx, e)
	calls["Delete"] = d.Delete(ctx, k)
	_, calls["SetIf"] = d.SetIf(ctx, e, driver.IfAbsent)
	_, calls["CompareAndDelete"] = d.CompareAndDelete(ctx, k, v)
	_, calls["Increment"] = d.Increment(ctx, k, 1, 0)
	_, _, calls["Pull"] = d.Pull(ctx, k)
	calls["DeleteNamespace"] = d.DeleteNamespace(ctx, k)
	calls["Flush"] = d.Flush(ctx)
	_, _, calls["GetMany"] = d.GetMany(ctx, []string{k})
	calls["SetMany"] = d.SetMany(ctx, []driver.Entry{e})
	_, calls["Extend"] = d.Extend(ctx, k, v, time.Second)
	_, calls["CompareAndSwap"] = d.CompareAndSwap(ctx, v, e)
	_, _, calls["CreateFenced"] = d.CreateFenced(ctx, e)
	_, _, calls["TTL"] = d.TTL(ctx, k)
	_, calls["Watch"] = d.Watch(ctx, k)
	for name, err := range calls {
		if !errors.Is(err, driver.ErrClosed) {
			t.Errorf("%s after Close = %v; want ErrClosed", name, err)
		}
	}

	owned := newDriver(t, rediscache.Options{URL: url})
	if err := owned.Close(); err != nil {
		t.Fatal(err)
	}
	if err := owned.Client().Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Ping on the client of a closed URL driver = %v; want redis.ErrClosed", err)
	}
}

// TestContext: a done context fails every call before a command is sent.
func TestContext(t *testing.T) {
	d := newDriver(t, rediscache.Options{URL: redistest.URL(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k := scope("ctx")
	if _, _, err := d.Get(ctx, k); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled ctx = %v", err)
	}
	if err := d.Set(ctx, driver.Entry{Key: k, Value: []byte(`1`)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a cancelled ctx = %v", err)
	}
	if _, err := d.SetIf(ctx, driver.Entry{Key: k, Value: []byte(`1`)}, driver.IfAbsent); !errors.Is(err, context.Canceled) {
		t.Errorf("SetIf with a cancelled ctx = %v", err)
	}
	if _, found, _ := d.Get(context.Background(), k); found {
		t.Error("a write with a cancelled ctx was stored")
	}
}

// TestValueMustBeBytes: the manager hands a byte driver the codec's bytes; anything else
// is an error, not a guess.
func TestValueMustBeBytes(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, rediscache.Options{URL: redistest.URL(t)})
	k := scope("bytes")
	if err := d.Set(ctx, driver.Entry{Key: k, Value: "abc"}); err == nil || !strings.Contains(err.Error(), "[]byte") {
		t.Errorf("Set of a string value = %v; want an error asking for []byte", err)
	}
	if _, err := d.CompareAndDelete(ctx, k, 5); err == nil {
		t.Error("CompareAndDelete with an int: no error")
	}
}

// TestCodec: a custom codec's bytes are what Redis holds.
func TestCodec(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, rediscache.Options{URL: redistest.URL(t), Codec: upperCodec{}})
	p := scope("codec")
	cleanup(t, d, p)
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	if d.Codec() != (upperCodec{}) {
		t.Fatal("Codec() is not the configured codec")
	}
	if err := c.Set(ctx, "k", "abc", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, err := c.Get(ctx, "k", &s); !found || err != nil || s != "abc" {
		t.Fatalf("Get = %q, %v, %v", s, found, err)
	}
}

// upperCodec stores strings upper-cased with a marker, to see the codec at work.
type upperCodec struct{}

func (upperCodec) Marshal(v any) ([]byte, error) {
	return []byte("U:" + strings.ToUpper(v.(string))), nil
}

func (upperCodec) Unmarshal(b []byte, v any) error {
	s, ok := strings.CutPrefix(string(b), "U:")
	if !ok {
		return errors.New("not ours")
	}
	*v.(*string) = strings.ToLower(s)
	return nil
}

// TestWatch: a release (compare-and-delete) or a swap by another client wakes a watcher
// at once; Close wakes every watcher.
func TestWatch(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		a := newDriver(t, rediscache.Options{URL: url})
		b := newDriver(t, rediscache.Options{URL: url}) // another "process"
		k := scope("watch")
		v := []byte(`"tok"`)
		if err := a.Set(ctx, driver.Entry{Key: k, Value: v, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := b.Watch(wctx, k)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if ok, err := a.CompareAndDelete(ctx, k, v); !ok || err != nil {
			t.Fatalf("CompareAndDelete = %v, %v", ok, err)
		}
		select {
		case <-ch:
			t.Logf("watch woke %v after the release", time.Since(start))
		case <-time.After(2 * time.Second):
			t.Fatal("the watch did not wake after a release by another client")
		}
		// A swap wakes too.
		if err := a.Set(ctx, driver.Entry{Key: k, Value: v, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		ch2, err := b.Watch(wctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := a.CompareAndSwap(ctx, v, driver.Entry{Key: k, Value: []byte(`"new"`), TTL: time.Minute}); !ok || err != nil {
			t.Fatalf("CompareAndSwap = %v, %v", ok, err)
		}
		select {
		case <-ch2:
		case <-time.After(2 * time.Second):
			t.Fatal("the watch did not wake after a swap")
		}
		// ctx's end closes the channel; Close closes every watch.
		c3ctx, c3cancel := context.WithCancel(ctx)
		ch3, _ := b.Watch(c3ctx, k+"x")
		c3cancel()
		<-ch3
		ch4, _ := b.Watch(ctx, k+"y")
		_ = b.Close()
		select {
		case <-ch4:
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not wake a watch")
		}
		_ = a.Delete(ctx, k)
	})
}

// TestLargeBatches: more keys than one MGET or DEL carries (1000) are split, on a single
// node and on a Cluster, and all come back in order.
func TestLargeBatches(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		p := scope("large")
		cleanup(t, d, p)
		const n = 2345
		keys := make([]string, n)
		entries := make([]driver.Entry, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("%s.%d", p, i)
			entries[i] = driver.Entry{Key: keys[i], Value: []byte(strconv.Itoa(i)), TTL: time.Minute}
		}
		if err := d.SetMany(ctx, entries); err != nil {
			t.Fatal(err)
		}
		vals, found, err := d.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			if !found[i] || string(vals[i].([]byte)) != strconv.Itoa(i) {
				t.Fatalf("GetMany[%d] = %v, %v; want %d", i, found[i], vals[i], i)
			}
		}
		if err := d.Delete(ctx, keys...); err != nil {
			t.Fatal(err)
		}
		_, found, err = d.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			if found[i] {
				t.Fatalf("key %d survived Delete", i)
			}
		}
	})
}
