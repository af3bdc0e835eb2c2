// Command cachectl is cachekit's command-line tool: it reads and writes keys, lists and
// force-releases locks, and counts keys, on any store the registry opens.
//
// Usage:
//
//	cachectl [flags] <command> [arguments] [flags]
//
// Commands:
//
//	get KEY                         print a value: a string as it is, anything else as JSON
//	set KEY VALUE [--ttl D] [--json-value]
//	                                store VALUE (a string, or JSON with --json-value)
//	del KEY...                      remove keys (missing keys are not an error)
//	ttl KEY                         print a key's remaining TTL
//	keys [NAMESPACE]                list the keys under NAMESPACE (SCAN on Redis)
//	locks [NAMESPACE]               list the held locks: key, owner, remaining TTL, token
//	lock KEY --ttl D [--owner O] [--hold D] [--wait D]
//	                                take a lock, print its token, hold it (renewed every
//	                                TTL/3) until --hold elapses or SIGINT/SIGTERM, release it
//	unlock KEY --force              remove a lock whoever holds it
//	unlock KEY --token T            release a lock only if T still holds it
//	stats                           count the keys per top-level namespace
//	doctor                          check each configured store's settings against what
//	                                locks and cache.Once need: one line per finding
//	demo                            play the lock guide's recipes and cache.Once on the
//	                                memory driver
//	help [COMMAND]                  print the usage, or a command's usage and flags
//
// The store comes from --url (a registry URL such as redis://127.0.0.1:6379/0, opened as
// the driver named "default") or, without --url, from the environment as
// registry.FromEnv reads it: CACHE_DRIVERS, CACHE_DEFAULT, CACHE_PREFIX and the other
// variables of registry.Variables. --prefix overrides CACHE_PREFIX, and --driver picks
// one of several CACHE_DRIVERS. Messages name the flags (--driver) and variables
// (CACHE_DEFAULT) the values came from, and a mistyped command, flag or driver name
// gets a suggestion.
//
// With --json every command prints exactly one JSON document on stdout, also when it
// fails (then with an "error" field), except for usage errors (exit code 2). docs/cachectl.md
// lists the shapes.
//
// Exit codes:
//
//	0  success
//	1  operational failure: the store failed, or a held lock was lost
//	2  usage error: bad command line, flags or configuration
//	3  not found: get or ttl of a missing key, unlock of a key that holds no lock
//	4  the lock is held by another holder (lock)
//
// doctor has exit codes of its own: 0 every check passed, 1 a warning (a setting that
// weakens a promise: no persistence, replicas without LockReplicas, an UNLOGGED table),
// 2 an error (a setting that breaks one: an evicting maxmemory-policy; or a store that
// cannot be reached, or a usage error).
//
// The demo (go run ./cmd/cachectl demo) plays the recipes of the lock guide
// (docs/locks.md) and cache.Once (docs/once.md) on the in-process memory driver, with
// goroutines standing in for servers and workers, and prints who ran and who skipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/registry"
	_ "github.com/cachekit/cache/registry/all" // every driver's URL schemes
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
	exitHeld     = 4
)

func main() {
	redis.SetLogger(quietRedis{})
	os.Exit(newApp(os.Stdout, os.Stderr).run(os.Args[1:]))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(args)
}

// app is one invocation of cachectl, with what it reads from the process made
// replaceable for the tests.
type app struct {
	stdout, stderr io.Writer
	ctx            context.Context
	lookupEnv      func(string) (string, bool)
	openURL        func(string) (cache.Driver, error)
	// notify, if set, is told the lock command's token once it holds the lock (tests).
	notify func(token string)
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdout: stdout, stderr: stderr, ctx: context.Background(),
		lookupEnv: os.LookupEnv, openURL: registry.Open,
	}
}

const usageText = `usage: cachectl [flags] <command> [arguments] [flags]

commands:
  get KEY                  print a value: a string as it is, anything else as JSON
  set KEY VALUE            store VALUE as a string (--json-value: as JSON)
                           flags: --ttl D (default: the driver's default TTL, or none)
  del KEY...               remove keys; missing keys are not an error
  ttl KEY                  print a key's remaining TTL ("none": no expiry)
  keys [NAMESPACE]         list the keys under NAMESPACE (all keys without it)
  locks [NAMESPACE]        list held locks: key, owner, remaining TTL, token
  lock KEY --ttl D         take a lock, print its token and hold it, renewed every TTL/3,
                           until --hold elapses or SIGINT/SIGTERM; then release it
                           flags: --owner O (default: cachectl.<host>.<pid>),
                                  --hold D (default 0: until a signal), --wait D
  unlock KEY --force       remove a lock whoever holds it
  unlock KEY --token T     release a lock only if token T still holds it
  stats                    count the keys per top-level namespace
  doctor                   check each configured store's settings against what locks and
                           Once need (eviction, persistence, replicas, UNLOGGED tables...):
                           one line per finding; exit 0 fine, 1 warnings, 2 errors
  demo                     play the lock guide's recipes (cron, webhook, Once, batch
                           report) and a Remember stampede on the in-process memory driver
  help [COMMAND]           print this message, or a command's usage and flags

flags (before or after the command):
  --url URL        the store, as a registry URL (redis://host:6379/0, memory://,
                   file:///var/cache/app, ...), opened as the driver "default"
  --prefix P       the global key prefix (overrides CACHE_PREFIX)
  --driver NAME    the driver to use, among CACHE_DRIVERS (overrides CACHE_DEFAULT)
  --json           print one JSON document on stdout, also on failure
  --timeout D      bound each store operation (default 30s)

%ENVIRONMENT%
durations: 30s, 5m, 1h, 1d, 90 (seconds), 1h30m

exit codes:
  0  success
  1  operational failure: the store failed, or a held lock was lost
  2  usage error: bad command line, flags or configuration
  3  not found: get or ttl of a missing key, unlock of a key that holds no lock
  4  the lock is held by another holder (lock)
`

// usage is the whole usage message.
func usage() string { return strings.Replace(usageText, "%ENVIRONMENT%", environmentHelp(), 1) }

// commonFlags are the flags every command takes, before or after its name.
type commonFlags struct {
	url, driver string
	prefix      optString
	json        bool
	timeout     time.Duration
}

// optString is a string flag that knows whether it was given.
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string     { return o.v }
func (o *optString) Set(s string) error { o.v, o.set = s, true; return nil }

// durationFlag is a flag.Value read with cache.ParseDuration ("1d", "90").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := cache.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%v is negative", d)
	}
	*f.d = d
	return nil
}

func (cf *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&cf.url, "url", cf.url, "the store, as a registry URL")
	fs.Var(&cf.prefix, "prefix", "the global key prefix (overrides CACHE_PREFIX)")
	fs.StringVar(&cf.driver, "driver", cf.driver, "the driver to use among CACHE_DRIVERS")
	fs.BoolVar(&cf.json, "json", cf.json, "print one JSON document")
	fs.Var(durationFlag{&cf.timeout}, "timeout", "bound each store operation")
}

// command is one subcommand: its flags, its arguments, and what it does.
type command struct {
	name  string
	usage string // the arguments, for the usage line
	min   int    // positional arguments: at least min,
	max   int    // at most max (-1: any number)
	flags func(fs *flag.FlagSet, o *opts)
	// store: the command needs a cache.
	store bool
	run   func(a *app, s *session, args []string) int
}

// commands is filled in commands.go.
var commands = map[string]*command{}

func (a *app) run(args []string) int {
	var cf commonFlags
	cf.timeout = 30 * time.Second
	fs := flag.NewFlagSet("cachectl", flag.ContinueOnError)
	cf.register(fs)
	pos, help, err := parseFlags(fs, args, false)
	switch {
	case help:
		fmt.Fprint(a.stderr, usage())
		return exitOK
	case err != nil:
		fmt.Fprintf(a.stderr, "cachectl: %v\n\n%s", err, usage())
		return exitUsage
	case len(pos) == 0:
		fmt.Fprint(a.stderr, usage())
		return exitUsage
	}
	name, rest := pos[0], pos[1:]
	switch name {
	case "help":
		return a.help(rest)
	case "demo":
		return a.demo(rest)
	}
	c := commands[name]
	if c == nil {
		fmt.Fprintf(a.stderr, "cachectl: unknown command %q%s\n\n%s", name, didYouMean(name, topics()), usage())
		return exitUsage
	}
	cfs := flag.NewFlagSet("cachectl "+name, flag.ContinueOnError)
	cf.register(cfs)
	var o opts
	if c.flags != nil {
		c.flags(cfs, &o)
	}
	commandUsage := func() { a.commandUsage(a.stderr, c, cfs) }
	pos, help, err = parseFlags(cfs, rest, true)
	switch {
	case help:
		commandUsage()
		return exitOK
	case err != nil:
		fmt.Fprintf(a.stderr, "cachectl %s: %v\n", name, err)
		commandUsage()
		return exitUsage
	}
	if len(pos) < c.min || (c.max >= 0 && len(pos) > c.max) {
		switch {
		case len(pos) < c.min:
			fmt.Fprintf(a.stderr, "cachectl %s: missing arguments\n", name)
		default:
			fmt.Fprintf(a.stderr, "cachectl %s: unexpected argument %q\n", name, pos[c.max])
		}
		commandUsage()
		return exitUsage
	}
	s := &session{app: a, cmd: name, flags: cf, opts: o}
	if c.store {
		code := s.open()
		if code != exitOK {
			return code
		}
		defer s.close()
	}
	return c.run(a, s, pos)
}

// commandUsage writes a command's usage line and its flags, its own and the common ones.
func (a *app) commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\nflags:\n", strings.TrimSpace("cachectl "+c.name+" "+c.usage))
	printFlags(w, fs)
}

// help prints the usage, or a topic's: exit 0, or 2 for a topic it does not know.
func (a *app) help(args []string) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(a.stdout, usage())
		return exitOK
	case len(args) > 1:
		fmt.Fprintf(a.stderr, "cachectl help: one topic at a time, not %q\ntopics: %s\n", args, strings.Join(topics(), ", "))
		return exitUsage
	}
	switch topic := args[0]; topic {
	case "help":
		fmt.Fprint(a.stdout, "usage: cachectl help [COMMAND]\n\nprints the usage, or a command's usage and flags\n")
	case "demo":
		fmt.Fprint(a.stdout, demoUsage)
	default:
		c := commands[topic]
		if c == nil {
			fmt.Fprintf(a.stderr, "cachectl help: unknown topic %q%s\ntopics: %s\n", topic, didYouMean(topic, topics()), strings.Join(topics(), ", "))
			return exitUsage
		}
		fs := flag.NewFlagSet("cachectl "+c.name, flag.ContinueOnError)
		var cf commonFlags
		cf.register(fs)
		if c.flags != nil {
			c.flags(fs, new(opts))
		}
		a.commandUsage(a.stdout, c, fs)
	}
	return exitOK
}

const demoUsage = `usage: cachectl demo

plays the lock guide's recipes (cron, webhook, Once, batch report) and a Remember
stampede on the in-process memory driver; it takes no store and no flags
`

// parseInterleaved parses fs's flags wherever they sit among the positional arguments
// ("unlock KEY --force" as well as "unlock --force KEY"), and returns the positional
// arguments. Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		used := len(args) - fs.NArg()
		rest := fs.Args()
		if used > 0 && args[used-1] == "--" && !isFlagValue(fs, args, used-1) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isFlagValue reports whether args[i] is the value of the flag before it ("--owner --").
func isFlagValue(fs *flag.FlagSet, args []string, i int) bool {
	if i == 0 {
		return false
	}
	prev := args[i-1]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

func (a *app) demo(rest []string) int {
	dfs := flag.NewFlagSet("cachectl demo", flag.ContinueOnError)
	pos, help, err := parseFlags(dfs, rest, false)
	switch {
	case help:
		fmt.Fprint(a.stderr, demoUsage)
		return exitOK
	case err != nil:
		fmt.Fprintf(a.stderr, "cachectl demo: %v\n%s", err, demoUsage)
		return exitUsage
	case len(pos) > 0:
		fmt.Fprintf(a.stderr, "cachectl demo: unexpected argument %q\n%s", pos[0], demoUsage)
		return exitUsage
	}
	if _, err := runDemo(a.ctx, a.stdout); err != nil {
		fmt.Fprintln(a.stderr, "cachectl demo:", err)
		return exitFailure
	}
	return exitOK
}
