package filecache_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cachekit/cache/drivers/filecache"
)

// nastyKeys are keys that break naive file drivers.
var nastyKeys = []string{
	"a", "A", ".", "..", "...", ".hidden", "../x", "../../etc/passwd", "a/b", "/abs", `a\b`, `..\x`,
	"a\x00b", "\x00", "nul", "con", "a b", "a%2fb", "a%2Fb", "%", "^", "^a", "~", "a~b",
	".lock", ".filecache", ".tmp-123", "users", "users.1", "Users.1", "USERS.1",
	"héllo", "日本語.キー", "emoji.😀", "\xff\xfe", "a\xffb", "\xc3", "\u212a", "K", "k", // Kelvin sign folds to k
	strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("/", 300), strings.Repeat("..", 200),
	strings.Repeat("é", 100), strings.Repeat("x", 1<<16), strings.Repeat("A", 80), strings.Repeat("A", 79) + "%",
}

// checkName checks the name of one key: a single path element inside the directory,
// not reserved, at most 255 bytes, only lower-case ASCII, and decoding back to the key.
func checkName(t *testing.T, key string) string {
	t.Helper()
	name := filecache.FileName(key)
	switch {
	case len(name) == 0 || len(name) > 255:
		t.Fatalf("FileName(%q) is %d bytes long", key, len(name))
	case name == "." || name == ".." || name[0] == '.':
		t.Fatalf("FileName(%q) = %q: reserved", key, name)
	case strings.ContainsAny(name, "/\\\x00") || !utf8.ValidString(name):
		t.Fatalf("FileName(%q) = %q: not a plain name", key, name)
	case strings.ToLower(name) != name:
		t.Fatalf("FileName(%q) = %q: not the same on a case-insensitive file system", key, name)
	}
	for _, c := range []byte(name) {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("FileName(%q) = %q: byte %#x", key, name, c)
		}
	}
	dir := filepath.FromSlash("/cache/dir")
	if p := filepath.Join(dir, name); filepath.Dir(p) != dir || filepath.Base(p) != name {
		t.Fatalf("FileName(%q) = %q joins to %q, outside %q", key, name, p, dir)
	}
	got, hashed, ok := filecache.KeyOfName(name)
	switch {
	case !ok:
		t.Fatalf("FileName(%q) = %q is not recognised as an entry name", key, name)
	case !hashed && got != key:
		t.Fatalf("FileName(%q) = %q decodes to %q", key, name, got)
	case hashed && !strings.HasPrefix(key, got):
		t.Fatalf("hashed FileName(%q) = %q: readable part %q is not a prefix of the key", key, name, got)
	case hashed && len(got) == 0:
		t.Fatalf("hashed FileName(%q) = %q has no readable part", key, name)
	}
	return name
}

func TestFileNames(t *testing.T) {
	seen := map[string]string{}
	for _, k := range nastyKeys {
		name := checkName(t, k)
		if other, dup := seen[name]; dup {
			t.Fatalf("keys %q and %q share the file name %q", other, k, name)
		}
		seen[name] = k
	}
	for _, c := range []struct{ key, name string }{
		{"user.1", "user.1"}, {"User.1", "^user.1"}, {".x", "%2ex"}, {"a/b", "a%2fb"}, {"..", "%2e."},
	} {
		if got := filecache.FileName(c.key); got != c.name {
			t.Errorf("FileName(%q) = %q; want %q", c.key, got, c.name)
		}
	}
}

// TestNastyKeysOnDisk writes every nasty key through the driver into a directory inside
// a sentinel directory, and checks that every file lands inside the cache directory and
// reads back its own value.
func TestNastyKeysOnDisk(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cache")
	d := newDriver(t, filecache.Options{Dir: dir, SweepInterval: -1})
	ctx := context.Background()
	for i, k := range nastyKeys {
		if err := d.Set(ctx, entry(k, []byte{byte(i)}, 0)); err != nil {
			t.Fatalf("Set(%.40q): %v", k, err)
		}
	}
	for i, k := range nastyKeys {
		v, found, err := d.Get(ctx, k)
		if err != nil || !found || !bytes.Equal(v.([]byte), []byte{byte(i)}) {
			t.Fatalf("Get(%.40q) = %v, %v, %v; want [%d]", k, v, found, err, i)
		}
	}
	err := filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); p != root && (rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))) {
			t.Errorf("%s is outside the cache directory", p)
		}
		if parent := filepath.Dir(p); !de.IsDir() && parent != dir && parent != filepath.Join(dir, ".lock") {
			t.Errorf("%s is not directly in the cache directory", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			files++
		}
	}
	if files != len(nastyKeys) {
		t.Fatalf("%d entry files for %d keys", files, len(nastyKeys))
	}
}

// FuzzFileName: no key escapes the directory or breaks the length limit, and two
// different keys never share a file name.
func FuzzFileName(f *testing.F) {
	for i, k := range nastyKeys {
		f.Add(k, nastyKeys[(i+1)%len(nastyKeys)])
	}
	f.Add("a", "A")
	f.Add("^a", "A")
	f.Add("%41", "A")
	f.Add(strings.Repeat("a", 200), strings.Repeat("a", 201))
	f.Add(strings.Repeat("a", 159)+"/", strings.Repeat("a", 159)+"/b")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == "" || b == "" {
			return // the manager never hands a driver an empty key
		}
		na, nb := checkName(t, a), checkName(t, b)
		if a != b && na == nb {
			t.Fatalf("keys %q and %q share the file name %q", a, b, na)
		}
		if a == b && na != nb {
			t.Fatalf("FileName(%q) is not deterministic", a)
		}
	})
}
