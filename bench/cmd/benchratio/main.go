// Command benchratio reads the output of `go test -bench` for package bench and prints
// a Markdown table: for each benchmark and implementation, the median ns/op, its ratio
// to the fastest raw library (ristretto, otter or golang-lru in their plain
// configuration) in the same benchmark, and the median B/op and allocs/op.
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

// raw are the libraries a ratio is taken against, in their plain configuration.
var raw = []string{"ristretto", "otter", "golang-lru"}

// line matches "BenchmarkGetHit/impl=otter-2  123  45.6 ns/op  0 B/op  0 allocs/op".
var line = regexp.MustCompile(`^Benchmark(\S+)/impl=(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op\s+([\d.]+) allocs/op)?`)

type key struct{ bench, impl string }

type samples struct{ ns, bytes, allocs []float64 }

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

func run(in io.Reader, out io.Writer) error {
	var (
		order   []key
		benches []string
		data    = map[key]*samples{}
	)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		k := key{m[1], m[2]}
		s := data[k]
		if s == nil {
			s = &samples{}
			data[k] = s
			order = append(order, k)
			if !slices.Contains(benches, k.bench) {
				benches = append(benches, k.bench)
			}
		}
		s.ns = append(s.ns, num(m[3]))
		if m[4] != "" {
			s.bytes = append(s.bytes, num(m[4]))
			s.allocs = append(s.allocs, num(m[5]))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines of the form BenchmarkX/impl=Y")
	}

	fmt.Fprintln(out, "| benchmark | impl | ns/op (median) | × fastest raw | B/op | allocs/op |")
	fmt.Fprintln(out, "|---|---|--:|--:|--:|--:|")
	for _, b := range benches {
		fastest, fastestImpl := 0.0, ""
		for _, r := range raw {
			if s := data[key{b, r}]; s != nil {
				if ns := median(s.ns); fastestImpl == "" || ns < fastest {
					fastest, fastestImpl = ns, r
				}
			}
		}
		for _, k := range order {
			if k.bench != b {
				continue
			}
			s := data[k]
			ns := median(s.ns)
			ratio := "n/a"
			if fastestImpl != "" {
				ratio = fmt.Sprintf("%.2f×", ns/fastest)
				if k.impl == fastestImpl {
					ratio = "1.00× (fastest)"
				}
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s |\n",
				b, k.impl, strconv.FormatFloat(ns, 'f', 1, 64), ratio, med(s.bytes), med(s.allocs))
		}
	}
	fmt.Fprintf(out, "\n%d benchmarks; ratios are taken against the fastest of %s in the same benchmark.\n",
		len(order), strings.Join(raw, ", "))
	return nil
}

func num(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64) // the regexp admits only digits and dots
	return f
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func med(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return strconv.FormatFloat(median(xs), 'f', -1, 64)
}
