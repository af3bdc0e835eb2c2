package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cachekit/cache/registry"
)

// What cachectl says, it says in its own terms: flags as --flag, the environment by its
// variables, never the Go names of the packages underneath.

// flagValueNames are the placeholders of the flags' values in usage lines.
var flagValueNames = map[string]string{
	"url": "URL", "prefix": "P", "driver": "NAME", "timeout": "D",
	"ttl": "D", "hold": "D", "wait": "D", "owner": "O", "token": "T",
}

// printFlags writes fs's flags, one a line, as --name VALUE.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var lines [][2]string
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		left := "--" + f.Name
		if !isBool(f) {
			v := flagValueNames[f.Name]
			if v == "" {
				v = "VALUE"
			}
			left += " " + v
		}
		width = max(width, len(left))
		lines = append(lines, [2]string{left, f.Usage})
	})
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l[0], l[1])
	}
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagNames returns fs's flags as --name.
func flagNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
	return out
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	dashedName    = regexp.MustCompile(`(^|[\s:])-([A-Za-z][\w-]*)`)
)

// flagError rewrites an error of fs.Parse in cachectl's terms: flags with two dashes,
// and a suggestion for a mistyped flag.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1] + didYouMean("--"+m[1], flagNames(fs))
	}
	if rest, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return dashedName.ReplaceAllString(rest, "$1--$2") + " needs a value"
	}
	return dashedName.ReplaceAllString(strings.Replace(msg, " for flag ", " for ", 1), "$1--$2")
}

// parseFlags parses args with fs, whose output is discarded: cachectl reports the
// errors itself. help is true for -h/--help.
func parseFlags(fs *flag.FlagSet, args []string, interleaved bool) (pos []string, help bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if interleaved {
		pos, err = parseInterleaved(fs, args)
	} else {
		err = fs.Parse(args)
		pos = fs.Args()
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, errors.New(flagError(fs, err))
	}
	return pos, false, nil
}

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to s, if one is
// close enough to be a typo, else "".
func didYouMean(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	// A typo: one edit in a short name, two in a longer one ("tll" is not "url").
	limit := 1
	if len([]rune(strings.TrimLeft(s, "-"))) > 4 {
		limit = 2
	}
	if best == "" || bestD == 0 || bestD > limit {
		return ""
	}
	if !strings.HasPrefix(best, "-") {
		best = strconv.Quote(best)
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the optimal string alignment distance: insertions, deletions,
// substitutions and transpositions of adjacent letters ("lokc" is one edit from "lock").
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}

// topics are what `cachectl help` knows: every command, demo and help.
func topics() []string {
	return slices.Sorted(slices.Values(append(slices.Collect(maps.Keys(commands)), "demo", "help")))
}

// environmentHelp lists the variables cachectl reads without --url: those of
// registry.FromEnv.
func environmentHelp() string {
	var b strings.Builder
	b.WriteString("environment (without --url, as registry.FromEnv reads it):\n")
	vars := registry.Variables()
	width := 0 // of the longest name
	for _, v := range vars {
		width = max(width, len(v.Name))
	}
	for _, v := range vars {
		words := strings.Fields(v.Doc)
		line := fmt.Sprintf("  %-*s ", width, v.Name)
		for i, w := range words {
			if i > 0 && len(line)+1+len(w) > 88 {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = strings.Repeat(" ", width+3)
			} else if i > 0 {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
