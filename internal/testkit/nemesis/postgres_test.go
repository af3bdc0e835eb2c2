package nemesis

import (
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// pgAcquireTimeout bounds a holder's acquisition on PostgreSQL (Job.AcquireTimeout), as
// go-redis's read timeout (3 s) bounds the Redis holders' commands: pgx has no read
// timeout of its own and waits for a reply as long as its ctx lets it.
const pgAcquireTimeout = 3 * time.Second

// TestNemesisPostgres: a PostgreSQL of the test's own (internal/testkit/pgtest), the pgcache
// driver on its default, logged table. Every holder's pgx pool and Watch's listening
// connection dial the holder's proxy (the URL's host:port is the proxy's). Faults: every
// holder's link (freeze, delay, reset, drop), pause and kill of holders, a pause of the
// whole server (SIGSTOP of the postmaster and every backend), and a crash of the server
// (immediate shutdown) and its restart on the same port with the same data. The lock's
// rows and the fencing counters are in logged tables, which crash recovery keeps: unlike
// restart-redis, the server need not stay down for the longest TTL.
func TestNemesisPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	job := baseJob(faultrun.TargetPostgres, srv.URL())
	job.AcquireTimeout = pgAcquireTimeout
	pause := Fault{Kind: "pause-postgres", Weight: 2, Do: func(d time.Duration) {
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
	}}
	restart := Fault{Kind: "restart-postgres", Weight: 1, Do: func(d time.Duration) {
		srv.Stop()
		time.Sleep(d)
		srv.Restart(t)
	}}
	// Every run has a restart, in the middle: the random schedule may add more.
	r := runWith(t, "postgres", job, []string{srv.Addr()}, func(h *Harness) {
		faults := append(h.ProxyFaults(), h.PauseHolder(), h.KillHolder(), pause, restart)
		h.Run(*duration/2, faults)
		h.Apply(restart)
		h.Run(*duration/2, faults)
	})
	r.log(t)
	assertSafe(t, r)
}
