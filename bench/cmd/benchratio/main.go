// Command benchratio reads the output of `go test -bench` for package bench and prints
// a Markdown table: for each benchmark and implementation, the median time per
// operation, its ratio to the benchmark's baseline measured in the same run, and the
// median B/op and allocs/op.
//
// The baseline of a benchmark is the fastest (by median) of its raw implementations:
// ristretto, otter and golang-lru (plain configurations) for the in-process benchmarks,
// floor (SET NX + DEL through go-redis) for the Redis lock benchmarks, go-redis for the
// Redis Get and Set benchmarks. A benchmark without one gets "n/a".
//
// Two shapes of benchmark are read:
//
//   - one implementation per sub-benchmark, BenchmarkX/impl=NAME, with ns/op (and
//     -benchmem's B/op and allocs/op). The ratio is the ratio of the medians.
//   - interleaved: BenchmarkX with one metric ns/NAME per implementation, all measured
//     in turns in the same count. The ratio is the median of the per-count ratios, a
//     paired measurement, followed by their range over the counts; B/op and allocs/op
//     are not per implementation there and are shown as "-".
//
// Usage:
//
//	go run ./cmd/benchratio /tmp/bench.txt
//
// Ratios are only meaningful within one run: compare them, not the absolute numbers,
// across machines or runs.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// raw are the implementations a ratio is taken against: the fastest of those present in
// a benchmark is its baseline.
var raw = []string{"ristretto", "otter", "golang-lru", "floor", "go-redis"}

// line matches a result line: "BenchmarkGetHit/impl=otter-2  123  45.6 ns/op  0 B/op ..."
// or "BenchmarkRedisLockInterleaved-2  890  0 ns/op  117777 ns/cachekit  103216 ns/floor ...",
// giving the name (without the -GOMAXPROCS suffix) and the metrics.
var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type key struct{ bench, impl string }

type samples struct {
	ns, bytes, allocs []float64
	count             []int     // interleaved: the count (line) each ns came from
	cpu               []float64 // interleaved: cpu-ns/IMPL, when reported
	cpuCount          []int     // the count each cpu came from
}

// table is what run gathers: samples per benchmark and implementation, in the order
// they first appear.
type table struct {
	order       []key
	benches     []string
	data        map[key]*samples
	interleaved map[string]bool
	counts      map[string]int // interleaved: lines read per benchmark
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchratio FILE (the output of go test -bench, - for stdin)")
		os.Exit(2)
	}
	in := io.Reader(os.Stdin)
	if os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	if err := run(in, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func (t *table) add(k key) *samples {
	s := t.data[k]
	if s == nil {
		s = &samples{}
		t.data[k] = s
		t.order = append(t.order, k)
		if !slices.Contains(t.benches, k.bench) {
			t.benches = append(t.benches, k.bench)
		}
	}
	return s
}

// metrics parses "45.6 ns/op 0 B/op 0 allocs/op" into unit → value, in order.
func metrics(s string) (units []string, values map[string]float64) {
	f := strings.Fields(s)
	values = map[string]float64{}
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			break
		}
		units = append(units, f[i+1])
		values[f[i+1]] = v
	}
	return units, values
}

func run(in io.Reader, out io.Writer) error {
	t := &table{data: map[key]*samples{}, interleaved: map[string]bool{}, counts: map[string]int{}}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		units, values := metrics(m[2])
		if bench, impl, ok := strings.Cut(m[1], "/impl="); ok {
			ns, ok := values["ns/op"]
			if !ok {
				continue
			}
			s := t.add(key{bench, impl})
			s.ns = append(s.ns, ns)
			if b, ok := values["B/op"]; ok {
				s.bytes = append(s.bytes, b)
				s.allocs = append(s.allocs, values["allocs/op"])
			}
			continue
		}
		n := t.counts[m[1]]
		found := false
		for _, u := range units {
			impl, ok := strings.CutPrefix(u, "ns/")
			if !ok || impl == "op" {
				continue
			}
			found = true
			s := t.add(key{m[1], impl})
			s.ns = append(s.ns, values[u])
			s.count = append(s.count, n)
			if c, ok := values["cpu-ns/"+impl]; ok {
				s.cpu = append(s.cpu, c)
				s.cpuCount = append(s.cpuCount, n)
			}
		}
		if found {
			t.interleaved[m[1]] = true
			t.counts[m[1]] = n + 1
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(t.order) == 0 {
		return fmt.Errorf("no benchmark lines of the form BenchmarkX/impl=Y, nor with ns/IMPL metrics")
	}

	fmt.Fprintln(out, "| benchmark | impl | time/op (median) | × baseline | B/op | allocs/op |")
	fmt.Fprintln(out, "|---|---|--:|--:|--:|--:|")
	for _, b := range t.benches {
		base := t.baseline(b)
		for _, k := range t.rows(b, base) {
			s := t.data[k]
			ratio := "n/a"
			switch {
			case base == "":
			case k.impl == base:
				ratio = "1.00× (baseline)"
			case t.interleaved[b]:
				ratio = pairedRatio(s, t.data[key{b, base}])
			default:
				ratio = fmt.Sprintf("%.2f×", median(s.ns)/median(t.data[key{b, base}].ns))
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s |\n",
				b, k.impl, duration(median(s.ns)), ratio, med(s.bytes), med(s.allocs))
		}
	}
	fmt.Fprintf(out, "\n%d rows; the baseline is the fastest of %s present in the same benchmark. "+
		"Interleaved benchmarks: the median of the per-count ratios, with their range.\n",
		len(t.order), strings.Join(raw, ", "))

	// The client-side CPU of the interleaved benchmarks that report it.
	header := false
	for _, b := range t.benches {
		base := t.baseline(b)
		if !t.interleaved[b] || base == "" || len(t.data[key{b, base}].cpu) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(out, "\n| benchmark | impl | client CPU/op (median) | × baseline |")
			fmt.Fprintln(out, "|---|---|--:|--:|")
			header = true
		}
		for _, k := range t.rows(b, base) {
			s := t.data[k]
			if len(s.cpu) == 0 {
				continue
			}
			ratio := "1.00× (baseline)"
			if k.impl != base {
				bs := t.data[key{b, base}]
				ratio = pairedRatio(&samples{ns: s.cpu, count: s.cpuCount}, &samples{ns: bs.cpu, count: bs.cpuCount})
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s |\n", b, k.impl, duration(median(s.cpu)), ratio)
		}
	}
	return nil
}

// rows returns bench's rows: in the order they first appear, except that an
// interleaved benchmark (whose metrics go test prints sorted by name) starts with its
// baseline.
func (t *table) rows(bench, base string) []key {
	var ks []key
	for _, k := range t.order {
		if k.bench == bench {
			ks = append(ks, k)
		}
	}
	if t.interleaved[bench] && base != "" {
		i := slices.Index(ks, key{bench, base})
		first := ks[i]
		rest := slices.Delete(ks, i, i+1)
		ks = append([]key{first}, rest...)
	}
	return ks
}

// baseline returns the fastest raw implementation of bench, by median, or "".
func (t *table) baseline(bench string) string {
	fastest, impl := 0.0, ""
	for _, r := range raw {
		if s := t.data[key{bench, r}]; s != nil {
			if ns := median(s.ns); impl == "" || ns < fastest {
				fastest, impl = ns, r
			}
		}
	}
	return impl
}

// pairedRatio is the median of s's per-count ratios to base, and their range.
func pairedRatio(s, base *samples) string {
	byCount := map[int]float64{}
	for i, c := range base.count {
		byCount[c] = base.ns[i]
	}
	var r []float64
	for i, c := range s.count {
		if b, ok := byCount[c]; ok && b > 0 {
			r = append(r, s.ns[i]/b)
		}
	}
	if len(r) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", median(r), slices.Min(r), slices.Max(r))
}

// median returns the median of xs, NaN-free for a non-empty xs.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// duration formats a median ns/op: in ns below 10 µs, in µs above.
func duration(ns float64) string {
	if ns < 10_000 {
		return strconv.FormatFloat(ns, 'f', 1, 64) + " ns"
	}
	return strconv.FormatFloat(ns/1000, 'f', 1, 64) + " µs"
}

func med(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return strconv.FormatFloat(median(xs), 'f', -1, 64)
}
