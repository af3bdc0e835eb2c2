package cache

import (
	"math/rand/v2"
	"time"
)

// sampleEvery is how often an operation is timed while a hook asks for durations: about
// one call in sampleEvery.
const sampleEvery = 64

// stamp is a time on the monotonic clock, in nanoseconds since epoch (plus one, so that
// 0 means "not sampled"): reading it costs one clock read, where time.Now costs two (the
// wall clock too), and a clock read can cost as much as half a memory Get.
type stamp int64

var epoch = time.Now()

func now() stamp { return stamp(time.Since(epoch)) + 1 }

// since is the time elapsed from s.
func (s stamp) since() time.Duration { return time.Duration(now() - s) }

// sampleStart returns now for about one operation in sampleEvery while metrics or a hook
// ask for durations, else zero: reading the clock twice on every call would cost more
// than a memory Get. With metrics the counters pick the sample (the next timed call of a
// goroutine after every sampleEvery-th event of its counter shard: a load of a flag that
// stays in the core's cache); without them a random draw does.
func (m *manager) sampleStart() stamp {
	if mt := m.metrics; mt != nil {
		if mt.sampling() {
			return now()
		}
		return 0
	}
	if m.timed.Load() && rand.Uint32()%sampleEvery == 0 {
		return now()
	}
	return 0
}
