package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/registry"
)

// runDoctor runs cachectl doctor with args and the environment env.
func runDoctor(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr)
	a.ctx = context.Background()
	a.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	a.openURL = registry.Open
	code := a.run(append([]string{"doctor"}, args...))
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	t.Logf("cachectl doctor %q: exit %d\n%s%s", args, code, r.stdout, r.stderr)
	return r
}

// TestDoctorEvictingRedis: a Redis that evicts keys under memory pressure fails the
// doctor, naming maxmemory-policy.
func TestDoctorEvictingRedis(t *testing.T) {
	srv := redistest.StartWith(t, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	r := runDoctor(t, nil, "--url", srv.URL()).want(t, exitDoctorError)
	if !strings.Contains(r.stdout, "default: error maxmemory-policy: allkeys-lru") {
		t.Errorf("stdout does not name maxmemory-policy as an error:\n%s", r.stdout)
	}
	doc := runDoctor(t, nil, "--url", srv.URL(), "--json").want(t, exitDoctorError).doc(t)
	if doc["status"] != "error" {
		t.Errorf("--json status = %v, want error", doc["status"])
	}
	found := false
	for _, f := range doc["findings"].([]any) {
		m := f.(map[string]any)
		if m["check"] == "maxmemory-policy" && m["severity"] == "error" && m["driver"] == "default" && m["fix"] != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("--json has no maxmemory-policy error with a fix: %v", doc)
	}
}

// TestDoctorHealthyRedis: noeviction and appendonly yes pass every check.
func TestDoctorHealthyRedis(t *testing.T) {
	srv := redistest.StartWith(t, "--maxmemory-policy", "noeviction", "--appendonly", "yes")
	r := runDoctor(t, nil, "--url", srv.URL()).want(t, exitOK)
	if !strings.Contains(r.stdout, "doctor: 0 errors, 0 warnings, 6 ok") {
		t.Errorf("summary missing or wrong:\n%s", r.stdout)
	}
}

// TestDoctorEnvironment: every driver of CACHE_DRIVERS is checked; the worst finding
// decides the exit code (an UNLOGGED table and no persistence: warnings).
func TestDoctorEnvironment(t *testing.T) {
	redisSrv := redistest.StartWith(t) // no persistence: a warning
	pg := pgtest.URL(t)
	pgURL := pg + "&table=doctor_cli&unlogged=true"
	env := map[string]string{
		registry.DriversVar: "pg=" + pgURL + ";redis=" + redisSrv.URL(),
		"CACHE_DEFAULT":     "redis",
	}
	r := runDoctor(t, env).want(t, exitDoctorWarning)
	for _, want := range []string{"pg: warning unlogged:", "redis: warning persistence:", "pg: ok version: PostgreSQL"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, r.stdout)
		}
	}
	r = runDoctor(t, env, "--driver", "pg").want(t, exitDoctorWarning)
	if strings.Contains(r.stdout, "redis:") || !strings.Contains(r.stdout, "pg: warning unlogged:") {
		t.Errorf("--driver pg: want the pg driver's findings only:\n%s", r.stdout)
	}
}

func TestDoctorUnreachable(t *testing.T) {
	srv := redistest.StartWith(t)
	u := srv.URL()
	srv.Stop()
	r := runDoctor(t, nil, "--url", u).want(t, exitDoctorError)
	if !strings.Contains(r.stdout, "default: error connection: cannot reach Redis") {
		t.Errorf("stdout does not report the connection:\n%s", r.stdout)
	}
}

func TestDoctorNoChecks(t *testing.T) {
	r := runDoctor(t, nil, "--url", "memory://").want(t, exitOK)
	if !strings.Contains(r.stdout, "has no checks") {
		t.Errorf("stdout does not say the memory driver has no checks:\n%s", r.stdout)
	}
}
