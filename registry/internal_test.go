package registry

import (
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cachekit/cache"
)

// TestUnknownSchemeNamesTheImport: a scheme of one of this module's drivers that no
// linked package registered is an error that says which import registers it.
func TestUnknownSchemeNamesTheImport(t *testing.T) {
	for scheme, pkg := range imports {
		mu.Lock()
		saved := factories[scheme]
		delete(factories, scheme)
		mu.Unlock()
		_, err := Open(scheme + "://127.0.0.1/0")
		mu.Lock()
		factories[scheme] = saved
		mu.Unlock()
		for _, want := range []string{`import _ "` + pkg + `"`, allPkg, "registered: "} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Open(%s://) without its driver = %v; want it to name %s", scheme, err, want)
			}
		}
	}
}

// TestImportsTable: every scheme the error table names is registered once its package
// is linked (registry/all, which the external tests import), by the package it names.
func TestImportsTable(t *testing.T) {
	for scheme := range imports {
		if !slices.Contains(Schemes(), scheme) {
			t.Errorf("scheme %s is in the imports table but not registered by registry/all", scheme)
		}
	}
	for _, s := range Schemes() {
		if _, builtIn := builtIns[s]; !builtIn && imports[s] == "" && !strings.HasPrefix(s, "test-") {
			t.Errorf("scheme %s is registered but the imports table does not name its package", s)
		}
	}
}

// TestRegisterReplacesBuiltIn: a program may replace a built-in scheme.
func TestRegisterReplacesBuiltIn(t *testing.T) {
	mu.RLock()
	saved := factories["null"]
	mu.RUnlock()
	defer Register("null", saved)
	called := false
	Register("null", func(u *url.URL, q *Params) (cache.Driver, error) {
		called = true
		return saved(u, q)
	})
	d, err := Open("null://")
	if err != nil || !called {
		t.Fatalf("Open(null://) after Register replaced it: %v, replacement called %v", err, called)
	}
	_ = d.Close()
}

// TestConfigurationPageListsEveryKey: docs/configuration.md has a row for every
// variable and for every parameter each registered scheme takes.
func TestConfigurationPageListsEveryKey(t *testing.T) {
	page, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(page)
	for _, v := range Variables() {
		if !strings.Contains(doc, "| `"+v.Name+"` |") {
			t.Errorf("docs/configuration.md has no row for %s", v.Name)
		}
	}
	urls := map[string]string{"file": "file://" + t.TempDir(), "unix": "unix:///tmp/none.sock", "postgres": "postgres://127.0.0.1:1/db", "postgresql": "postgresql://127.0.0.1:1/db"}
	for _, scheme := range Schemes() {
		if strings.HasPrefix(scheme, "test-") {
			continue
		}
		raw, ok := urls[scheme]
		if !ok {
			raw = scheme + "://127.0.0.1:1/0"
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := factory(u, raw)
		q := &Params{v: url.Values{}}
		d, err := f(u, q)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		_ = d.Close()
		for _, name := range q.Known() {
			if !strings.Contains(doc, "| `"+name+"` |") {
				t.Errorf("docs/configuration.md has no row for %s's parameter %s", scheme, name)
			}
		}
	}
}
