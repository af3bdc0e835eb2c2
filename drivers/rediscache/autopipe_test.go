package rediscache

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestAutoPipeDropsEndedContext: a queued command whose caller's context has ended
// before its pipeline is flushed is not sent (Redis counts no SET for it and the key
// stays absent), and its caller gets the context's error; a command with a live context
// is sent as usual.
func TestAutoPipeDropsEndedContext(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr()})
	defer c.Close()
	ctx := context.Background()
	p := newAutoPipe(c)
	if p == nil {
		t.Fatal("no autopipeliner")
	}
	p.busy.Add(1) // another caller in flight: send queues
	defer p.busy.Add(-1)
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.send(ended, c, redis.NewStatusCmd(ended, "set", "apd.ended", "1")); !errors.Is(err, context.Canceled) {
		t.Errorf("send with an ended context: %v; want context.Canceled", err)
	}
	if err := p.send(ctx, c, redis.NewStatusCmd(ctx, "set", "apd.live", "1")); err != nil {
		t.Fatalf("send with a live context: %v", err)
	}
	if n := c.Exists(ctx, "apd.ended", "apd.live").Val(); n != 1 {
		t.Errorf("%d of the two keys exist; want 1 (the live one)", n)
	}
	if calls := setCalls(t, c); calls != 1 {
		t.Errorf("Redis ran SET %d times; want 1", calls)
	}
}

// setCalls is the number of SET commands Redis has run since its statistics were reset.
func setCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(line, "cmdstat_set:calls=")
		if ok {
			n := 0
			for _, r := range rest {
				if r < '0' || r > '9' {
					break
				}
				n = n*10 + int(r-'0')
			}
			return n
		}
	}
	return 0
}

// TestAutoPipeDropInPipeline: in a pipeline of several commands, drop leaves out those
// of send whose context has ended, in order, and passes the others (the client's own
// commands included) to the next hook.
func TestAutoPipeDropInPipeline(t *testing.T) {
	p := &autoPipe{}
	live, ended := context.Background(), func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
	var cmds []redis.Cmder
	for i, ctx := range []context.Context{live, ended, live, ended, ended} {
		c := redis.NewStatusCmd(ctx, "set", string(rune('a'+i)), "1")
		cmds = append(cmds, c)
		if i < 4 { // e is the client's own: not send's
			p.queued.Store(c, ctx)
		}
	}
	var sent []string
	next := func(_ context.Context, cs []redis.Cmder) error {
		for _, c := range cs {
			sent = append(sent, c.Args()[1].(string))
		}
		return nil
	}
	if err := p.drop(live, cmds, next); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sent, ","); got != "a,c,e" {
		t.Errorf("sent %s; want a,c,e", got)
	}
	for _, i := range []int{1, 3} {
		if err := cmds[i].Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("%v: %v; want context.Canceled", cmds[i].Args(), err)
		}
	}
	n := 0
	p.queued.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d commands still queued after the flush; want 0", n)
	}
}

// TestAutoPipeOneHookPerClient: the drivers over one client share its autoPipe, so the
// client gets the hooks once.
func TestAutoPipeOneHookPerClient(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr()})
	defer c.Close()
	p, q := newAutoPipe(c), newAutoPipe(c)
	if p == nil || p != q {
		t.Fatalf("two drivers over one client: autoPipes %p and %p; want one", p, q)
	}
}
