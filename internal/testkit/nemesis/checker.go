package nemesis

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Overlap is two sections of one key, of different holders, that overlap in time: A
// entered first, and B entered before A's last action.
type Overlap struct {
	A, B Section
}

// By is how long they overlap.
func (o Overlap) By() time.Duration { return time.Duration(min(o.A.Exit, o.B.Exit) - o.B.Enter) }

// Disorder is a section whose fencing token is not greater than the token of an earlier
// section of the same key: Prev is the earlier section with the highest token.
type Disorder struct {
	Prev, Next Section
}

// Report is what the checker found.
type Report struct {
	Sections   int
	Keys       map[string]int // sections per key
	Open       int            // sections of holders killed inside them
	Overlaps   []Overlap
	OutOfOrder []Disorder
}

// Check checks a history: per key, it sorts the sections by entry and reports every
// pair of sections of different holders that overlap in time, and every fencing token
// that is not greater than the token of an earlier section (sections without a token
// are not in the second count). A section's time is closed: [Enter, Exit], so a
// one-action section is an instant, and two sections that share an instant overlap.
func Check(sections []Section) Report {
	s := slices.Clone(sections)
	sortSections(s)
	r := Report{Sections: len(s), Keys: map[string]int{}}
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j].Key == s[i].Key {
			j++
		}
		checkKey(s[i:j], &r)
		r.Keys[s[i].Key] = j - i
		i = j
	}
	for _, x := range s {
		if x.Open {
			r.Open++
		}
	}
	return r
}

func checkKey(s []Section, r *Report) {
	var best *Section // the earlier section with the highest token
	for i := range s {
		a := &s[i]
		for j := i + 1; j < len(s) && s[j].Enter <= a.Exit; j++ {
			if s[j].Holder != a.Holder {
				r.Overlaps = append(r.Overlaps, Overlap{A: *a, B: s[j]})
			}
		}
		if a.Token == 0 {
			continue
		}
		if best != nil && a.Token <= best.Token {
			r.OutOfOrder = append(r.OutOfOrder, Disorder{Prev: *best, Next: *a})
		}
		if best == nil || a.Token > best.Token {
			best = a
		}
	}
}

// String sums the report up, with the first few overlaps and tokens out of order.
func (r Report) String() string {
	var b strings.Builder
	keys := make([]string, 0, len(r.Keys))
	for k := range r.Keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	per := make([]string, len(keys))
	for i, k := range keys {
		per[i] = fmt.Sprintf("%s %d", k, r.Keys[k])
	}
	fmt.Fprintf(&b, "%d sections (%s; %d of killed holders), %d overlaps, %d tokens out of order",
		r.Sections, strings.Join(per, ", "), r.Open, len(r.Overlaps), len(r.OutOfOrder))
	for i, o := range r.Overlaps {
		if i == 5 {
			fmt.Fprintf(&b, "\n  … %d more overlaps", len(r.Overlaps)-i)
			break
		}
		fmt.Fprintf(&b, "\n  overlap by %v:\n    %v\n    %v", o.By(), o.A, o.B)
	}
	for i, d := range r.OutOfOrder {
		if i == 5 {
			fmt.Fprintf(&b, "\n  … %d more tokens out of order", len(r.OutOfOrder)-i)
			break
		}
		fmt.Fprintf(&b, "\n  token %d after %d:\n    %v\n    %v", d.Next.Token, d.Prev.Token, d.Prev, d.Next)
	}
	return b.String()
}
