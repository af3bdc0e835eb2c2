package linearize

import (
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// Op is the kind of an operation.
type Op uint8

// The operations of the model, each one call of package cache.
const (
	OpGet    Op = iota + 1 // Get: Found, V
	OpSet                  // Set(A)
	OpCreate               // SetWith(A, OnConflict: Create): OK is Written
	OpUpdate               // SetWith(A, OnConflict: Update): OK is Written
	OpCAS                  // Modify: A to B if the key holds A; OK is swapped, else Found, V are what fn saw
	OpIncr                 // Increment(A): V is the new value
	OpPull                 // Pull: Found, V
	OpRemove               // Remove
)

var opNames = [...]string{OpGet: "get", OpSet: "set", OpCreate: "create", OpUpdate: "update", OpCAS: "cas", OpIncr: "incr", OpPull: "pull", OpRemove: "remove"}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// parseOp is the inverse of Op.String.
func parseOp(s string) (Op, bool) {
	i := slices.Index(opNames[:], s)
	if i <= 0 {
		return 0, false
	}
	return Op(i), true
}

// Input is an operation's call: a porcupine Operation's Input.
type Input struct {
	Op   Op
	Key  string
	A, B int64
}

// Output is an operation's result: a porcupine Operation's Output.
type Output struct {
	// Unknown: the operation failed in a way that does not say whether it took effect.
	// The model accepts it whatever the state, and applies its effect.
	Unknown bool
	// OK is Written for Create and Update, swapped for CAS.
	OK bool
	// Found and V are what a Get or a Pull read, or what a CAS's fn saw when it did not
	// swap. V is the new value for Incr.
	Found bool
	V     int64
}

// state is a key's register: absent, or holding V.
type state struct {
	Present bool
	V       int64
}

func (s state) String() string {
	if !s.Present {
		return "absent"
	}
	return fmt.Sprint(s.V)
}

// step is the register's sequential specification: whether the operation could return
// out in state s, and the state after it.
func step(s state, in Input, out Output) (bool, state) {
	read := func() bool { return out.Found == s.Present && (!s.Present || out.V == s.V) }
	switch in.Op {
	case OpGet:
		return out.Unknown || read(), s
	case OpSet:
		return true, state{true, in.A}
	case OpCreate:
		if s.Present {
			return out.Unknown || !out.OK, s
		}
		return out.Unknown || out.OK, state{true, in.A}
	case OpUpdate:
		if !s.Present {
			return out.Unknown || !out.OK, s
		}
		return out.Unknown || out.OK, state{true, in.A}
	case OpCAS:
		if s.Present && s.V == in.A {
			return out.Unknown || out.OK, state{true, in.B}
		}
		return out.Unknown || !out.OK && read(), s
	case OpIncr:
		n := in.A
		if s.Present {
			n += s.V
		}
		return out.Unknown || out.V == n, state{true, n}
	case OpPull:
		return out.Unknown || read(), state{}
	case OpRemove:
		return true, state{}
	}
	return false, s
}

// Model is the porcupine model of the key-value register: Inputs and Outputs, states
// per key, partitioned by key.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() interface{} { return state{} },
		Step: func(s, in, out interface{}) (bool, interface{}) {
			return step(s.(state), in.(Input), out.(Output))
		},
		Equal: func(a, b interface{}) bool { return a.(state) == b.(state) },
		Hash: func(s interface{}) uint64 {
			st := s.(state)
			if !st.Present {
				return 0x9e3779b97f4a7c15
			}
			return uint64(st.V) * 0xbf58476d1ce4e5b9
		},
		DescribeOperation: func(in, out interface{}) string { return describe(in.(Input), out.(Output)) },
		DescribeState:     func(s interface{}) string { return s.(state).String() },
	}
}

// partition splits a history by key, keeping each key's operations in their order.
func partition(h []porcupine.Operation) [][]porcupine.Operation {
	idx := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range h {
		k := op.Input.(Input).Key
		i, ok := idx[k]
		if !ok {
			i = len(parts)
			idx[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// describe formats an operation for reports and porcupine's visualization.
func describe(in Input, out Output) string {
	var call string
	switch in.Op {
	case OpSet, OpCreate, OpUpdate, OpIncr:
		call = fmt.Sprintf("%v(%s, %d)", in.Op, in.Key, in.A)
	case OpCAS:
		call = fmt.Sprintf("cas(%s, %d→%d)", in.Key, in.A, in.B)
	default:
		call = fmt.Sprintf("%v(%s)", in.Op, in.Key)
	}
	if out.Unknown {
		return call + " → ?"
	}
	read := "miss"
	if out.Found {
		read = fmt.Sprint(out.V)
	}
	switch in.Op {
	case OpGet, OpPull:
		return call + " → " + read
	case OpCreate, OpUpdate:
		return fmt.Sprintf("%s → written %v", call, out.OK)
	case OpCAS:
		if out.OK {
			return call + " → swapped"
		}
		return call + " → saw " + read
	case OpIncr:
		return fmt.Sprintf("%s → %d", call, out.V)
	}
	return call + " → ok"
}
