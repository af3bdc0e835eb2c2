package linearize

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Result is what the checker found in a history.
type Result struct {
	Ops     int            // operations in the history checked (completed and unknown)
	ByOp    map[string]int // of which, by kind
	Unknown int            // of which, of unknown outcome (an error, or the client killed)
	Failed  int            // operations left out: they failed in a way that proves they did nothing
	Reads   int            // reads of unknown outcome, left out as well (a read changes nothing)
	Keys    int            // partitions: keys, each checked on its own
	// Illegal lists the keys whose history is not linearizable.
	Illegal []string
	// TimedOut lists the keys whose check did not end in time: neither verdict.
	TimedOut []string
	// Errors counts the errors of the operations, failed or unknown, by kind.
	Errors map[string]int
	// Longest is the longest time the checker took on one key.
	Longest time.Duration
	// Reports, for each illegal key, describes where its history could not be
	// linearized: the end of the longest linearizable prefix, and what could not follow.
	Reports map[string]string
}

// Linearizable reports whether every key's history was found linearizable.
func (r Result) Linearizable() bool { return len(r.Illegal) == 0 && len(r.TimedOut) == 0 }

func (r Result) String() string {
	v := "linearizable"
	switch {
	case len(r.Illegal) > 0:
		v = fmt.Sprintf("NOT linearizable (%d of %d keys: %s)", len(r.Illegal), r.Keys, strings.Join(first(r.Illegal, 5), ", "))
	case len(r.TimedOut) > 0:
		v = fmt.Sprintf("undecided (%d of %d keys timed out: %s)", len(r.TimedOut), r.Keys, strings.Join(first(r.TimedOut, 5), ", "))
	}
	return fmt.Sprintf("%s: %d operations (%s), %d of unknown outcome, %d failed and left out, %d failed reads; %d keys, longest check %v",
		v, r.Ops, countString(r.ByOp), r.Unknown, r.Failed, r.Reads, r.Keys, r.Longest.Round(time.Millisecond))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "…")
	}
	return s
}

// countString formats counts by name, sorted by name.
func countString(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+" "+strconv.Itoa(m[k]))
	}
	return strings.Join(parts, ", ")
}

// CheckOptions are the options of [Check].
type CheckOptions struct {
	// Timeout bounds the check of each key; 0: none. A key whose check runs out of time
	// is reported in TimedOut.
	Timeout time.Duration
	// VisualizeDir, if set, is where porcupine's visualization of each illegal key's
	// history is written, as an HTML file named after the key, with the key's operations
	// as text beside it (the same name, .txt).
	VisualizeDir string
}

// Operations turns records into porcupine operations: failed operations are left out
// (failed reads too), and an operation of unknown outcome returns at the end of the
// history with an Unknown output. It also returns the counts of what it did.
func Operations(recs []Record) ([]porcupine.Operation, Result) {
	res := Result{ByOp: map[string]int{}, Errors: map[string]int{}}
	var end int64
	for _, r := range recs {
		end = max(end, r.Call, r.Return)
	}
	end++ // after every instant of the history
	ops := make([]porcupine.Operation, 0, len(recs))
	for _, r := range recs {
		if r.Err != "" {
			res.Errors[r.Err]++
		}
		if r.Res == resFail {
			res.Failed++
			continue
		}
		if r.Unknown() && r.In.Op == OpGet {
			res.Reads++
			continue
		}
		op := porcupine.Operation{ClientId: r.Client, Input: r.In, Call: r.Call, Output: r.Out, Return: r.Return, Metadata: r.Client}
		if r.Unknown() {
			res.Unknown++
			op.Output, op.Return = Output{Unknown: true}, end
		}
		res.Ops++
		res.ByOp[r.In.Op.String()]++
		ops = append(ops, op)
	}
	return ops, res
}

// Check checks a history for linearizability against [Model], one key at a time.
func Check(recs []Record, o CheckOptions) Result {
	ops, res := Operations(recs)
	model := Model()
	parts := model.Partition(ops)
	res.Keys = len(parts)
	for _, part := range parts {
		key := part[0].Input.(Input).Key
		lanes(part)
		start := time.Now()
		verdict := porcupine.CheckOperationsTimeout(model, part, o.Timeout)
		res.Longest = max(res.Longest, time.Since(start))
		switch verdict {
		case porcupine.Illegal:
			// Again, for the partial linearizations that explain it (a search that
			// failed once fails again: the same history, the same model).
			_, info := porcupine.CheckOperationsVerbose(model, part, o.Timeout)
			res.Illegal = append(res.Illegal, key)
			if res.Reports == nil {
				res.Reports = map[string]string{}
			}
			res.Reports[key] = explain(part, info)
			if o.VisualizeDir != "" {
				name := filepath.Join(o.VisualizeDir, strings.NewReplacer("/", "_", ".", "_").Replace(key))
				err := porcupine.VisualizePath(model, info, name+".html")
				if err == nil {
					err = os.WriteFile(name+".txt", []byte(listing(part)), 0o644)
				}
				if err != nil {
					res.Reports[key] += "\nvisualization: " + err.Error()
				}
			}
		case porcupine.Unknown:
			res.TimedOut = append(res.TimedOut, key)
		}
	}
	slices.Sort(res.Illegal)
	slices.Sort(res.TimedOut)
	return res
}

// lanes renumbers the ClientIds of one key's operations for porcupine's visualization:
// each operation gets the lowest lane free at its call, so that no two operations of a
// lane overlap (an operation of unknown outcome lasts until the end of the history).
func lanes(ops []porcupine.Operation) {
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ops[a].Call, ops[b].Call) })
	var ends []int64
	for _, i := range order {
		lane := slices.IndexFunc(ends, func(e int64) bool { return e < ops[i].Call })
		if lane < 0 {
			lane = len(ends)
			ends = append(ends, 0)
		}
		ends[lane] = ops[i].Return
		ops[i].ClientId = lane
	}
}

// listing lists a key's operations by call, times in ms from the first call.
func listing(part []porcupine.Operation) string {
	ops := slices.Clone(part)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for _, op := range ops {
		b.WriteString(opLine(op, ops[0].Call))
	}
	return b.String()
}

// opLine formats an operation with its call and return in ms from t0; "?" for the return
// of an operation of unknown outcome.
func opLine(op porcupine.Operation, t0 int64) string {
	ret := "?"
	if !op.Output.(Output).Unknown {
		ret = fmt.Sprintf("%.3f", float64(op.Return-t0)/1e6)
	}
	return fmt.Sprintf("  [%.3f, %s] ms client %v: %s\n", float64(op.Call-t0)/1e6, ret, op.Metadata, describe(op.Input.(Input), op.Output.(Output)))
}

// explain describes an illegal key's history: the end of the longest linearizable
// prefix porcupine found, the state after it, and the operations that could come next
// (not in the prefix, called before the first of them returned), none of which the model
// accepts there.
func explain(part []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var longest []porcupine.Operation
	for _, p := range info.PartialLinearizationsOperations() {
		for _, l := range p {
			if len(l) > len(longest) {
				longest = l
			}
		}
	}
	t0 := int64(math.MaxInt64)
	for _, op := range part {
		t0 = min(t0, op.Call)
	}
	line := func(op porcupine.Operation) string { return opLine(op, t0) }
	var b strings.Builder
	fmt.Fprintf(&b, "%d operations; the longest linearizable prefix has %d, ending with:\n", len(part), len(longest))
	st := state{}
	in := map[porcupine.Operation]bool{}
	for i, op := range longest {
		_, st = step(st, op.Input.(Input), op.Output.(Output))
		in[op] = true
		if i >= len(longest)-6 {
			b.WriteString(line(op))
		}
	}
	next := int64(math.MaxInt64)
	for _, op := range part {
		if !in[op] {
			next = min(next, op.Return)
		}
	}
	fmt.Fprintf(&b, "then the key is %v, and none of these can follow:\n", st)
	n := 0
	for _, op := range part {
		if in[op] || op.Call > next {
			continue
		}
		if n++; n > 12 {
			b.WriteString("  …\n")
			break
		}
		b.WriteString(line(op))
	}
	return b.String()
}
