package registry

import (
	"net/url"
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
