package rediscache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/redis/go-redis/v9"
)

// replyLoser dials connections that lose the reply to the next command holding its
// trigger: the command reaches Redis and runs, its reply is read and dropped, and the
// connection fails, as when a connection breaks while the reply is on its way.
type replyLoser struct {
	mu      sync.Mutex
	trigger []byte
}

func (l *replyLoser) arm(trigger string) {
	l.mu.Lock()
	l.trigger = []byte(trigger)
	l.mu.Unlock()
}

func (l *replyLoser) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &losingConn{Conn: c, l: l}, nil
}

type losingConn struct {
	net.Conn
	l    *replyLoser
	lose bool
}

func (c *losingConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	if c.l.trigger != nil && bytes.Contains(b, c.l.trigger) {
		c.l.trigger, c.lose = nil, true
	}
	c.l.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *losingConn) Read(b []byte) (int, error) {
	if !c.lose {
		return c.Conn.Read(b)
	}
	_, _ = c.Conn.Read(b) // the reply: the command ran
	_ = c.Conn.Close()
	return 0, io.ErrUnexpectedEOF
}

// TestWritesAreNotRetried: a write whose reply is lost returns an error (its outcome is
// unknown) and ran once, never a second time behind the caller's back; a read whose
// reply is lost is sent again and succeeds.
func TestWritesAreNotRetried(t *testing.T) {
	srv := redistest.Start(t)
	loser := new(replyLoser)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: loser.Dial, ContextTimeoutEnabled: true})
	d, err := New(Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close(); _ = client.Close() }()
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer direct.Close()
	ctx := context.Background()
	if err := direct.Set(ctx, "lost.pull", "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := direct.Set(ctx, "lost.get", "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := direct.Set(ctx, "lost.lock", "me", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The scripts loaded, so that the reply lost is the script's, not a NOSCRIPT.
	if _, err := d.Increment(ctx, "warm.incr", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CompareAndDelete(ctx, "warm.lock", []byte("x")); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		key  string
		call func() error
		held string // what Redis holds after one run
	}{
		{"lost.incr", func() error { _, err := d.Increment(ctx, "lost.incr", 1, 0); return err }, "1"},
		{"lost.incrttl", func() error { _, err := d.Increment(ctx, "lost.incrttl", 1, time.Minute); return err }, "1"},
		{"lost.create", func() error {
			_, err := d.SetIf(ctx, driver.Entry{Key: "lost.create", Value: []byte("mine"), TTL: time.Minute}, driver.IfAbsent)
			return err
		}, "mine"},
		{"lost.pull", func() error { _, _, err := d.Pull(ctx, "lost.pull"); return err }, ""},
		{"lost.lock", func() error { _, err := d.CompareAndDelete(ctx, "lost.lock", []byte("me")); return err }, ""},
		{"lost.list", func() error { _, err := d.ListPush(ctx, "lost.list", []any{[]byte("a")}, false, 0); return err }, ""},
	}
	for _, w := range writes {
		loser.arm(w.key)
		err := w.call()
		if err == nil {
			t.Errorf("%s with its reply lost: no error; want the connection's error (the outcome is unknown)", w.key)
		} else if errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with its reply lost: %v; the breaker opened while Redis answers", w.key, err)
		}
		if w.key == "lost.list" {
			if n, err := direct.LLen(ctx, w.key).Result(); err != nil || n != 1 {
				t.Errorf("%s: the list has %d items (%v); want 1: the push ran once", w.key, n, err)
			}
			continue
		}
		held, err := direct.Get(ctx, w.key).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		if held != w.held {
			t.Errorf("%s: Redis holds %q after a lost reply; want %q (the write ran once)", w.key, held, w.held)
		}
	}
	loser.arm("lost.get")
	if v, found, err := d.Get(ctx, "lost.get"); err != nil || !found || string(v.([]byte)) != "7" {
		t.Errorf("Get with its reply lost = %v, %v, %v; want it sent again and answered", v, found, err)
	}
}
