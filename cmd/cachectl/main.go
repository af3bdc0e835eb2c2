// Command cachectl is cachekit's command-line tool.
//
// Usage:
//
//	cachectl demo
//
// The demo subcommand plays the recipes of the lock guide (docs/locks.md) on the
// in-process memory driver, with goroutines standing in for servers and workers, and
// prints who ran and who skipped:
//
//	go run ./cmd/cachectl demo
//
// cachectl exits 0 on success, 1 when a command fails, and 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage: cachectl <command>

commands:
  demo   play the lock guide's recipes (cron, webhook, batch report) and a
         Remember stampede on the in-process memory driver
  help   print this message
`

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cachectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "demo":
		dfs := flag.NewFlagSet("cachectl demo", flag.ContinueOnError)
		dfs.SetOutput(stderr)
		dfs.Usage = func() { fmt.Fprint(stderr, "usage: cachectl demo\n") }
		if err := dfs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if dfs.NArg() > 0 {
			fmt.Fprintf(stderr, "cachectl demo: unexpected argument %q\n", dfs.Arg(0))
			dfs.Usage()
			return 2
		}
		if _, err := runDemo(context.Background(), stdout); err != nil {
			fmt.Fprintln(stderr, "cachectl demo:", err)
			return 1
		}
		return 0
	case "help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprintf(stderr, "cachectl: unknown command %q\n\n", cmd)
		fs.Usage()
		return 2
	}
}
