package linearize

import (
	"strings"
	"testing"
)

// op builds a record: in called at call, returned at ret with out ("" res: ok).
func rec(call, ret int64, in Input, out Output) Record {
	return Record{In: in, Call: call, Return: ret, Res: resOK, Out: out}
}

// unknown builds a record of unknown outcome, called at call.
func unknown(call int64, in Input) Record {
	return Record{In: in, Call: call, Return: call + 1, Res: resInfo, Err: "i/o timeout"}
}

func get(k string) Input             { return Input{Op: OpGet, Key: k} }
func set(k string, v int64) Input    { return Input{Op: OpSet, Key: k, A: v} }
func create(k string, v int64) Input { return Input{Op: OpCreate, Key: k, A: v} }
func update(k string, v int64) Input { return Input{Op: OpUpdate, Key: k, A: v} }
func cas(k string, a, b int64) Input { return Input{Op: OpCAS, Key: k, A: a, B: b} }
func incr(k string, d int64) Input   { return Input{Op: OpIncr, Key: k, A: d} }
func pull(k string) Input            { return Input{Op: OpPull, Key: k} }
func remove(k string) Input          { return Input{Op: OpRemove, Key: k} }

var (
	ok       = Output{OK: true}
	notOK    = Output{}
	miss     = Output{}
	hit      = func(v int64) Output { return Output{Found: true, V: v} }
	newValue = func(v int64) Output { return Output{V: v} }
)

// TestModel checks the model on small histories, each either linearizable or not by
// construction.
func TestModel(t *testing.T) {
	cases := []struct {
		name string
		h    []Record
		want bool
	}{
		{"sequential", []Record{
			rec(0, 1, get("k"), miss),
			rec(2, 3, create("k", 1), ok),
			rec(4, 5, create("k", 2), notOK),
			rec(6, 7, update("k", 3), ok),
			rec(8, 9, cas("k", 3, 4), ok),
			rec(10, 11, cas("k", 3, 0), hit(4)),
			rec(12, 13, incr("k", 2), newValue(6)),
			rec(14, 15, pull("k"), hit(6)),
			rec(16, 17, pull("k"), miss),
			rec(18, 19, update("k", 1), notOK),
			rec(20, 21, cas("k", 0, 1), miss),
			rec(22, 23, incr("k", 1), newValue(1)),
			rec(24, 25, set("k", 0), ok),
			rec(26, 27, get("k"), hit(0)),
			rec(28, 29, remove("k"), ok),
			rec(30, 31, get("k"), miss),
		}, true},
		{"stale read", []Record{
			rec(0, 1, set("k", 1), ok),
			rec(2, 3, set("k", 2), ok),
			rec(4, 5, get("k"), hit(1)),
		}, false},
		{"concurrent writes, either order", []Record{
			rec(0, 10, set("k", 1), ok),
			rec(1, 11, set("k", 2), ok),
			rec(12, 13, get("k"), hit(1)),
		}, true},
		{"two creates both written", []Record{
			rec(0, 10, create("k", 1), ok),
			rec(1, 11, create("k", 2), ok),
		}, false},
		{"two swaps of one value both succeed", []Record{
			rec(0, 1, set("k", 3), ok),
			rec(2, 10, cas("k", 3, 4), ok),
			rec(3, 11, cas("k", 3, 1), ok),
		}, false},
		{"a swap that saw a value never written", []Record{
			rec(0, 1, set("k", 3), ok),
			rec(2, 3, cas("k", 1, 2), hit(4)),
		}, false},
		{"a lost increment", []Record{
			rec(0, 10, incr("k", 1), newValue(1)),
			rec(1, 11, incr("k", 1), newValue(1)),
		}, false},
		{"two pulls of one value", []Record{
			rec(0, 1, set("k", 2), ok),
			rec(2, 10, pull("k"), hit(2)),
			rec(3, 11, pull("k"), hit(2)),
		}, false},
		{"a read after a remove", []Record{
			rec(0, 1, set("k", 2), ok),
			rec(2, 3, remove("k"), ok),
			rec(4, 5, get("k"), hit(2)),
		}, false},
		{"an update of a missing key", []Record{
			rec(0, 1, update("k", 2), ok),
		}, false},
		{"keys are independent", []Record{
			rec(0, 1, set("a", 1), ok),
			rec(2, 3, get("b"), miss),
			rec(4, 5, get("a"), hit(1)),
		}, true},
		// Operations of unknown outcome: they may take effect at any time after their
		// call, or never.
		{"an unknown write never applied", []Record{
			rec(0, 1, set("k", 1), ok),
			unknown(2, set("k", 2)),
			rec(10, 11, get("k"), hit(1)),
			rec(12, 13, get("k"), hit(1)),
		}, true},
		{"an unknown write applied late", []Record{
			rec(0, 1, set("k", 1), ok),
			unknown(2, set("k", 2)),
			rec(10, 11, get("k"), hit(1)),
			rec(12, 13, get("k"), hit(2)),
		}, true},
		{"an unknown write cannot apply before its call", []Record{
			rec(0, 1, set("k", 1), ok),
			rec(2, 3, get("k"), hit(2)),
			unknown(4, set("k", 2)),
		}, false},
		{"an unknown write applies once", []Record{
			rec(0, 1, set("k", 1), ok),
			unknown(2, set("k", 2)),
			rec(10, 11, get("k"), hit(2)),
			rec(12, 13, set("k", 1), ok),
			rec(14, 15, get("k"), hit(2)),
		}, false},
		{"an unknown increment applies once", []Record{
			rec(0, 1, set("k", 1), ok),
			unknown(2, incr("k", 1)),
			rec(10, 11, get("k"), hit(2)),
			rec(12, 13, incr("k", 1), newValue(4)),
		}, false},
		{"an unknown pull", []Record{
			rec(0, 1, set("k", 1), ok),
			unknown(2, pull("k")),
			rec(10, 11, get("k"), miss),
		}, true},
		{"failed operations are left out", []Record{
			rec(0, 1, set("k", 1), ok),
			{In: set("k", 2), Call: 2, Return: 3, Res: resFail, Err: "breaker open"},
			{In: get("k"), Call: 4, Res: resInfo}, // a failed read: left out
			rec(10, 11, get("k"), hit(1)),
		}, true},
		{"a client killed during its operation", []Record{
			rec(0, 1, set("k", 1), ok),
			{In: set("k", 2), Call: 2}, // no return line
			rec(10, 11, get("k"), hit(2)),
		}, true},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			r := Check(c.h, CheckOptions{})
			if r.Linearizable() != c.want {
				t.Errorf("linearizable = %v, want %v: %v\n%s", r.Linearizable(), c.want, r, strings.Join(mapValues(r.Reports), "\n"))
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	var s []string
	for _, v := range m {
		s = append(s, v)
	}
	return s
}

// TestReadHistory: a client's file, with an operation that never returned (its client
// was killed) and a last line cut short by the kill.
func TestReadHistory(t *testing.T) {
	in := `{"c":3,"pid":42}
{"i":1,"t":100,"o":"set","k":"e0.k1","a":2}
{"i":1,"t":150,"r":"ok"}
{"i":2,"t":160,"o":"cas","k":"e0.k1","a":2,"b":4}
{"i":2,"t":170,"r":"ok","f":true,"v":3}
{"i":3,"t":200,"o":"incr","k":"e0.k0","a":1}
{"i":3,"t":230,"r":"info","e":"i/o timeout"}
{"i":4,"t":300,"o":"pull","k":"e0.k1"}
{"i":5,"t":3`
	recs, err := readHistory(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Client: 3, PID: 42, In: set("e0.k1", 2), Call: 100, Return: 150, Res: resOK},
		{Client: 3, PID: 42, In: cas("e0.k1", 2, 4), Call: 160, Return: 170, Res: resOK, Out: hit(3)},
		{Client: 3, PID: 42, In: incr("e0.k0", 1), Call: 200, Return: 230, Res: resInfo, Err: "i/o timeout"},
		{Client: 3, PID: 42, In: pull("e0.k1"), Call: 300},
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i := range want {
		if recs[i] != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, recs[i], want[i])
		}
	}
	if !recs[2].Unknown() || !recs[3].Unknown() || recs[0].Unknown() {
		t.Errorf("Unknown: got %v %v %v, want false true true", recs[0].Unknown(), recs[2].Unknown(), recs[3].Unknown())
	}
	if _, err := readHistory(strings.NewReader(`{"i":1,"t":3` + "\n" + `{"i":1,"t":100,"o":"get","k":"a"}`)); err == nil {
		t.Error("a bad line that is not the last one: no error")
	}
	if _, err := readHistory(strings.NewReader(`{"i":1,"t":150,"r":"ok"}`)); err == nil {
		t.Error("a return without a call: no error")
	}
}

// TestRecorder: what a Recorder writes, ReadHistory reads back.
func TestRecorder(t *testing.T) {
	path := t.TempDir() + "/h.jsonl"
	r, err := NewRecorder(path, 7)
	if err != nil {
		t.Fatal(err)
	}
	s1 := r.Invoke(10, cas("k", 1, 2))
	s2 := r.Invoke(11, get("k"))
	r.Return(s2, 20, resOK, hit(0), nil)
	r.Return(s1, 21, resInfo, Output{}, errNoSwap)
	r.Invoke(30, remove("k"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].In != cas("k", 1, 2) || recs[0].Return != 21 || !recs[0].Unknown() ||
		recs[1].Out != hit(0) || recs[1].Res != resOK || recs[2].Return != 0 || recs[2].Client != 7 {
		t.Errorf("read back %+v", recs)
	}
}
