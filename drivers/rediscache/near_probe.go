package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The near cache's master proof. A pong on a tracking connection proves that the
// invalidations of the node it is connected to have been applied; it says nothing of
// whether that node is the one the driver reads from and writes to. After a failover the
// data client follows the new master while a tracking connection may stay on the old
// one, which keeps answering. So every ping round also sends, on the data client's own
// connection to the node that serves the tracker's keys, ROLE and a PUBLISH on a
// channel that only the tracking connection's current connection is subscribed to
// (probeChannel). Redis answers PUBLISH with the number of clients of that node that
// received it: 1 proves that the tracking connection is on that node, and ROLE that the
// node is a master. A round counts (see tracker.confirm) only with its pong and such a
// probe; a probe that says otherwise makes the tracker lose its confirmation, empties
// the near tier, and, when the tracking connection is on another node, replaces it (its
// new connection dials the master the client now reports).

// ErrNearReplicaReads is returned, wrapped, by New when Options.Near is set on a client
// that reads from replicas: a Cluster client with ReadOnly, RouteRandomly or
// RouteByLatency, a Sentinel client with ReplicaOnly, or a client of a replica's
// address. A replica may answer with a value older than a write its master has
// acknowledged, and a copy of it would be kept with nothing to invalidate it.
var ErrNearReplicaReads = errors.New("rediscache: Options.Near needs a client that reads from the master; this one reads from replicas")

// checkClusterReads refuses a Cluster client that routes reads to replicas.
func checkClusterReads(o *redis.ClusterOptions) error {
	if o.ReadOnly || o.RouteRandomly || o.RouteByLatency {
		return fmt.Errorf("%w (ClusterOptions ReadOnly %v, RouteRandomly %v, RouteByLatency %v): use a client without them for the near-cached driver", ErrNearReplicaReads, o.ReadOnly, o.RouteRandomly, o.RouteByLatency)
	}
	return nil
}

// checkProbe runs on c, at New, the commands of a probe: ROLE and a PUBLISH. Redis
// refusing either (an ACL) is an error: the near cache could never vouch for a copy.
// With master (a single node or Sentinel client), a node that says it is not a master
// is refused (a Sentinel client with ReplicaOnly, a replica's address). A node that
// cannot be reached is not an error: the probes keep the near tier off until they pass.
func checkProbe(ctx context.Context, c redis.Cmdable, master bool) error {
	ctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	var role *redis.Cmd
	var pub *redis.IntCmd
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		role = p.Do(ctx, "role")
		pub = p.Publish(ctx, "__cachekit:near:check", "check")
		return nil
	})
	var re redis.Error
	for _, err := range []error{role.Err(), pub.Err()} {
		if errors.As(err, &re) {
			return fmt.Errorf("rediscache: Options.Near needs the ROLE and PUBLISH commands (each ping round checks, with them, that the tracking connection is on the master the driver uses): %w", err)
		}
	}
	vs, err := role.Slice()
	if err != nil || !master || (len(vs) > 0 && vs[0] == "master") {
		return nil
	}
	return fmt.Errorf("%w (its node answers ROLE with %v)", ErrNearReplicaReads, vs)
}

// newToken is a random name for a tracker's probe channels.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// probeChannel is the channel that connection epoch of t subscribes to.
func (t *tracker) probeChannel(epoch uint64) string {
	return "__cachekit:near:" + t.token + ":" + strconv.FormatUint(epoch, 10)
}

// probeVerdict is what a probe found.
type probeVerdict uint8

const (
	probeNoAnswer  probeVerdict = iota // an error: nothing is known
	probeOK                            // the node is a master and holds the connection
	probeReplica                       // the data client's node is not a master
	probeElsewhere                     // the tracking connection is on another node
)

// probe runs ROLE and PUBLISH on the channel of epoch, in one pipeline (one connection,
// so one node), on the data client's node for t's keys.
func (t *tracker) probe(ctx context.Context, epoch uint64) probeVerdict {
	c, err := t.dataNode(ctx)
	if err != nil {
		return probeNoAnswer
	}
	var role *redis.Cmd
	var pub *redis.IntCmd
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		role = p.Do(ctx, "role")
		pub = p.Publish(ctx, t.probeChannel(epoch), "probe")
		return nil
	}); err != nil {
		return probeNoAnswer
	}
	vs, _ := role.Slice()
	switch {
	case len(vs) == 0 || vs[0] != "master":
		return probeReplica
	case pub.Val() < 1:
		return probeElsewhere
	}
	return probeOK
}

// dataNode is the client of the node the data client sends t's keys to: the data
// client itself on a single node or Sentinel; on a Cluster, the master the client now
// routes probeKey's slot to (or the tracked node itself, when it serves no slot).
func (t *tracker) dataNode(ctx context.Context) (*redis.Client, error) {
	switch {
	case t.n.cluster == nil:
		return t.n.data, nil
	case t.probeKey == "":
		return t.node, nil
	}
	return t.n.cluster.MasterForKey(ctx, t.probeKey)
}

// maxProbeKeys bounds the search for a key of a master's slots.
const maxProbeKeys = 1 << 16

// findProbeKey returns a key that the Cluster client routes to addr, or "" (a master
// without slots).
func findProbeKey(ctx context.Context, c *redis.ClusterClient, addr string) string {
	for i := range maxProbeKeys {
		k := "{near" + strconv.Itoa(i) + "}"
		m, err := c.MasterForKey(ctx, k)
		if err != nil {
			return ""
		}
		if m.Options().Addr == addr {
			return k
		}
	}
	return ""
}
