package nearcheck

import (
	"strings"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// opts: MaxStaleness 100 ms, MaxAge 1 s.
var opts = Options{MaxStaleness: 100 * time.Millisecond, MaxAge: time.Second}

// w is a write of k=v from start to ack (ms) by another client.
func w(k, v string, start, ack int64) Write {
	return Write{Key: k, Value: v, Start: start * ms, Ack: ack * ms}
}

// rd is a read of k=v by proc from start to end (ms).
func rd(proc, k, v string, start, end int64) Read {
	return Read{Key: k, Value: v, Proc: proc, Start: start * ms, End: end * ms}
}

func check(t *testing.T, ws []Write, rs []Read, o Options) Report {
	t.Helper()
	r, err := Check(ws, rs, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// want checks the counts of every kind.
func want(t *testing.T, r Report, counts map[Kind]int, covered int) {
	t.Helper()
	for _, k := range []Kind{Stale, NonMonotonic, MissedOwnWrite, Unknown} {
		if r.Counts[k] != counts[k] {
			t.Errorf("%s: %d; want %d\n%v", k, r.Counts[k], counts[k], r)
		}
	}
	if r.CoveredByMaxAge != covered {
		t.Errorf("covered by MaxAge: %d; want %d\n%v", r.CoveredByMaxAge, covered, r)
	}
}

func TestLegalHistory(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "2", 10, 11), w("k", "3", 500, 501), w("j", "a", 0, 2)}
	rs := []Read{
		rd("p", "k", "", 0, 1),      // before the first write's ack: absent is fine
		rd("p", "k", "1", 0, 1),     // concurrent with the write
		rd("q", "k", "1", 100, 101), // 89 ms after 2 replaced 1: within MaxStaleness
		rd("q", "k", "2", 111, 112),
		rd("p", "k", "2", 600, 601), // 99 ms after 3
		rd("p", "k", "3", 700, 710),
		rd("p", "j", "a", 1000, 1001),
		rd("p", "x", "", 5, 6), // never written, absent
	}
	r := check(t, ws, rs, opts)
	want(t, r, nil, 0)
	if r.Reads != len(rs) || r.Writes != len(ws) {
		t.Errorf("reads, writes = %d, %d; want %d, %d", r.Reads, r.Writes, len(rs), len(ws))
	}
	if r.Worst != 99*time.Millisecond {
		t.Errorf("worst staleness %v; want 99ms", r.Worst)
	}
}

func TestStale(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "2", 10, 11), w("k", "3", 20, 21)}
	rs := []Read{
		rd("p", "k", "1", 112, 113), // 101 ms after 2
		rd("q", "k", "2", 500, 501), // 479 ms after 3
		rd("q", "k", "3", 502, 503),
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{Stale: 2}, 0)
	ex := r.Examples[Stale]
	if len(ex) != 2 || ex[0].By != 479*time.Millisecond || ex[0].Due != "3" || ex[1].By != 101*time.Millisecond {
		t.Errorf("examples %v; want the worst first (479ms, replaced by 3), then 101ms", ex)
	}
	if r.Worst != 479*time.Millisecond {
		t.Errorf("worst %v; want 479ms", r.Worst)
	}
}

// A flush (the key absent) and a re-write of the same value: the reads of "" and "1"
// are judged against the write that makes them most legal.
func TestRepeatedValues(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "", 100, 101), w("k", "1", 200, 201), w("k", "2", 300, 301)}
	rs := []Read{
		rd("p", "k", "", 150, 151),  // the flush
		rd("p", "k", "1", 250, 251), // the second write of 1
		rd("q", "k", "", 350, 351),  // "" was replaced at 201 by 1: stale
		rd("r", "k", "1", 390, 391), // 89 ms after 2: fine
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{Stale: 1}, 0)
}

func TestUnknown(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "2", 100, 101)}
	rs := []Read{
		rd("p", "k", "9", 5, 6),   // never written
		rd("p", "k", "2", 50, 60), // written after the read ended
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{Unknown: 2}, 0)
}

func TestNonMonotonic(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "2", 10, 11), w("k", "3", 20, 21)}
	rs := []Read{
		rd("p", "k", "3", 30, 31),
		rd("p", "k", "2", 32, 33), // within MaxStaleness, but p read 3 already
		rd("q", "k", "2", 34, 35), // another process: fine
		// Concurrent reads of one process may return in any order.
		rd("r", "k", "3", 40, 50),
		rd("r", "k", "2", 45, 46),
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{NonMonotonic: 1}, 0)
	if ex := r.Examples[NonMonotonic]; len(ex) != 1 || ex[0].Read.Proc != "p" || ex[0].Behind != 1 || ex[0].Due != "3" {
		t.Errorf("examples %v; want p's read of 2, 1 version behind 3", ex)
	}
}

func TestMissedOwnWrite(t *testing.T) {
	own := w("k", "2", 10, 11)
	own.Proc = "p"
	ws := []Write{w("k", "1", 0, 1), own}
	rs := []Read{
		rd("p", "k", "1", 5, 6),   // before its write: fine
		rd("p", "k", "1", 12, 13), // after it: missed
		rd("q", "k", "1", 12, 13), // another process, within MaxStaleness: fine
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{MissedOwnWrite: 1}, 0)
}

// Writes that may have been lost replace nothing, and going back past them is legal.
func TestUncertain(t *testing.T) {
	lost := w("k", "2", 10, 11)
	lost.Uncertain, lost.Proc = true, "p"
	ws := []Write{w("k", "1", 0, 1), lost, w("k", "3", 1000, 1001)}
	rs := []Read{
		rd("p", "k", "2", 20, 21),
		rd("p", "k", "1", 500, 501),   // 2 was lost: not stale, not a regression, not missed
		rd("p", "k", "1", 1200, 1201), // 3 is certain: stale
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{Stale: 1}, 0)
}

func TestSilent(t *testing.T) {
	swap := w("k", "", 100, 101)
	swap.Silent = true
	ws := []Write{w("k", "1", 0, 1), swap, w("j", "1", 0, 1), swap, w("j", "2", 600, 601)}
	ws[3].Key = "j"
	rs := []Read{
		rd("p", "k", "1", 150, 151),   // within MaxStaleness of the swap
		rd("p", "k", "1", 900, 901),   // covered by MaxAge
		rd("p", "k", "1", 1200, 1201), // past MaxAge
		rd("q", "j", "1", 800, 801),   // the silent swap, then 2 reported 200 ms before: stale
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{Stale: 2}, 1)
	if r.WorstCovered != 799*time.Millisecond {
		t.Errorf("worst covered %v; want 799ms", r.WorstCovered)
	}
	noAge := opts
	noAge.MaxAge = 0
	want(t, check(t, ws, rs, noAge), map[Kind]int{Stale: 3}, 0)
}

func TestByFault(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "2", 10, 11)}
	rs := []Read{rd("p", "k", "1", 200, 201), rd("p", "k", "1", 400, 401), rd("p", "k", "1", 600, 601)}
	o := opts
	o.Faults = []Fault{{Kind: "kill", Start: 300 * ms}, {Kind: "swapdb", Start: 500 * ms}}
	r := check(t, ws, rs, o)
	if r.ByFault[NoFault][Stale] != 1 || r.ByFault["kill"][Stale] != 1 || r.ByFault["swapdb"][Stale] != 1 {
		t.Errorf("by fault %v; want one stale read under each", r.ByFault)
	}
	if r.ReadsByFault["kill"] != 1 || r.ReadsByFault[NoFault] != 1 {
		t.Errorf("reads by fault %v; want one under each", r.ReadsByFault)
	}
	if r.WorstByFault["swapdb"] != 589*time.Millisecond {
		t.Errorf("worst after swapdb %v; want 589ms", r.WorstByFault["swapdb"])
	}
	var sum Report
	sum.Add(r)
	sum.Add(r)
	if sum.Counts[Stale] != 6 || sum.ByFault["kill"][Stale] != 2 || sum.Reads != 6 || len(sum.Examples[Stale]) != examplesPerKind {
		t.Errorf("sum of two reports: %v", sum)
	}
	if s := r.String(); !strings.Contains(s, "3 stale") || !strings.Contains(s, "after swapdb") {
		t.Errorf("String: %s", s)
	}
}

func TestBadHistory(t *testing.T) {
	for _, ws := range [][]Write{
		{w("k", "1", 0, 10), w("k", "2", 5, 12)},
		{w("k", "1", 10, 5)},
	} {
		if _, err := Check(ws, nil, opts); err == nil {
			t.Errorf("Check(%v): no error", ws)
		}
	}
}

// A read of a value written more than once, spanning both writes, may have returned
// either: a later read of a version between them is not a regression.
func TestAmbiguousVersion(t *testing.T) {
	ws := []Write{w("k", "1", 0, 1), w("k", "", 1000, 1001), w("k", "2", 2000, 2001), w("k", "", 3300, 3301)}
	rs := []Read{
		rd("p", "k", "", 500, 3320), // the first flush's or the second's
		rd("p", "k", "2", 3330, 3331),
		rd("q", "k", "", 3340, 3341), // only the second flush's: the first was replaced 1.3 s before
		rd("q", "k", "2", 3350, 3351),
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{NonMonotonic: 1}, 0)
	if ex := r.Examples[NonMonotonic]; len(ex) != 1 || ex[0].Read.Proc != "q" {
		t.Errorf("examples %v; want q's read only", ex)
	}
}

// A Failed write's value may land after newer writes: its reads are counted apart, and
// the reads after them are judged as usual.
func TestLateFailedWrite(t *testing.T) {
	mine := func(v string, start, ack int64, failed bool) Write {
		x := w("k", v, start, ack)
		x.Proc, x.Failed = "p", failed
		return x
	}
	// 2's first attempt timed out and landed after 3 and 4, at about 2000 ms.
	ws := []Write{mine("1", 0, 1, false), mine("2", 10, 1010, true), mine("3", 1100, 1101, false), mine("4", 1200, 1201, false)}
	rs := []Read{
		rd("p", "k", "4", 1300, 1301),
		rd("p", "k", "2", 2000, 2001), // late: not stale, not non-monotonic, not missed
		rd("q", "k", "2", 2000, 2001), // another process reads it from Redis too
		rd("p", "k", "4", 2100, 2101), // back to 4 after 2: judged on 4 (fine)
		rd("p", "k", "3", 2200, 2201), // 3 after 4 was read: stale, non-monotonic, missed
		rd("p", "k", "1", 2300, 2301), // 1 never failed: stale, non-monotonic, missed
	}
	r := check(t, ws, rs, opts)
	want(t, r, map[Kind]int{Stale: 2, NonMonotonic: 2, MissedOwnWrite: 2}, 0)
	if r.LateFailedWrites != 2 || r.ByFault[NoFault][LateFailedWrite] != 2 {
		t.Errorf("late failed writes: %d, by fault %v; want 2\n%v", r.LateFailedWrites, r.ByFault, r)
	}
	var sum Report
	sum.Add(r)
	sum.Add(r)
	if sum.LateFailedWrites != 4 {
		t.Errorf("Add: %d late failed writes; want 4", sum.LateFailedWrites)
	}
}
