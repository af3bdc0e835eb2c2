// Package filecache is the file driver: one directory on one host, shared safely by every
// process on that host that opens it.
//
//	d, err := filecache.New(filecache.Options{Dir: "/var/cache/myapp"})
//	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": d}})
//
// Each key is one file in Options.Dir holding a small header (format version, expiry,
// the full key), the codec's bytes and a checksum. docs/filecache.md has the whole
// story; in short:
//
//   - Safe across processes on one host. Every write is a temporary file in Dir renamed
//     over the key's file, so a reader in any process sees the old value or the new one,
//     never a mix, and a process killed mid-write leaves only a stray temporary file that
//     the sweep removes. Every write of a key (Set, Create, Update, Increment, Pull,
//     Delete, the lock's compare-and-delete, Extend, CompareAndSwap) runs under an
//     flock(2) lock on one of 64 lock files in Dir/.lock, chosen by the key's file name:
//     atomic across processes. The kernel drops the lock of a process that dies, and the
//     lock files are never removed, so they need no cleanup. cache.Lock therefore
//     excludes across the processes of one host, a crashed holder's lock is taken over
//     after its TTL, and a waiter (LockOptions.Wait) wakes as soon as the holder
//     releases, in any process (inotify on Linux).
//   - Local POSIX file systems only (ext4, xfs, btrfs, tmpfs, APFS). NFS, SMB and other
//     network file systems do not give flock and rename these guarantees between hosts.
//     It needs flock(2): on systems without it (Windows) New returns an error matching
//     errors.ErrUnsupported.
//   - Keys of any bytes (../x, a/b, NUL, unicode, invalid UTF-8, a megabyte long) are
//     escaped into file names of at most 225 bytes that stay inside Dir; two keys never
//     share a file, and each file stores its full key, checked on every read.
//   - Expired entries are misses at once (lazy expiry on every read, against
//     Options.Now) and are removed by a bounded background sweep that Close stops.
//   - A corrupt or truncated file is a miss, reported to Options.OnError with an error
//     matching [ErrCorrupt]; the next write of the key replaces it and the sweep removes
//     it.
//   - No fsync by default (Options.Sync): a cache can be recomputed, and a process crash
//     loses nothing either way (the data is in the kernel's page cache). Only a power
//     loss or a kernel crash can lose recent writes, and then a damaged file is a
//     corrupt-file miss, never a wrong value. Fencing counters are always fsynced.
package filecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache/driver"
)

// Options configure a [Driver].
type Options struct {
	// Dir is the cache directory. Required. It is created (mode 0700, with its parents)
	// if missing; an existing directory keeps its mode. Entry files are created with
	// mode 0600, so only the owner's processes share the cache. Give the cache a
	// directory of its own: Flush removes every file whose name is one the driver could
	// have written.
	Dir string
	// DefaultTTL is used when a caller passes a TTL of 0. Default: 0, no expiry.
	DefaultTTL time.Duration
	// Codec turns values into the bytes stored in the files. Default: driver.JSON. Every
	// process sharing Dir must use the same codec.
	Codec driver.Codec
	// Now is the clock every TTL decision reads: the expiry written with each entry, and
	// whether an entry read back has expired. Default: time.Now. Tests pass a fake clock;
	// every process sharing Dir must use the same clock for TTLs to agree.
	Now func() time.Time
	// SweepInterval is how often the background sweep runs. Each run examines at most
	// 10,000 files, continuing where the previous run stopped, and removes expired and
	// corrupt entries and temporary files that a crashed writer left behind. Default
	// (0): one minute. Negative: no background sweep (expired entries are still misses,
	// and [Driver.Sweep] can be called by hand).
	SweepInterval time.Duration
	// Sync makes every write durable before it returns: fsync of the temporary file
	// before the rename and of the directory after it. Default: false. Without it a
	// process crash still loses nothing (the kernel has the data); a power loss or a
	// kernel crash may lose the last writes, which then read as misses (a damaged file
	// fails its checksum). A cache rarely needs Sync; it makes every write wait for the
	// disk, often a millisecond or more.
	Sync bool
	// OnError receives the problems the driver does not return to a caller: a corrupt
	// or unreadable entry file met by Get or the sweep (matching [ErrCorrupt]), and the
	// sweep's own failures. It is called from the caller's goroutine or the sweep's, so
	// it must be safe for concurrent use and must not call back into the driver.
	// Default: log through slog.Default at level Warn. Pass func(error) {} to drop them.
	OnError func(error)
}

const (
	numStripes       = 64
	lockDirName      = ".lock"
	markerName       = ".filecache"
	markerContent    = "cachekit filecache format 1\n"
	tempPrefix       = ".tmp-"
	defaultSweep     = time.Minute
	sweepBatch       = 10_000
	staleTempAge     = 10 * time.Minute
	errorPrefix      = "filecache: "
	dirPerm          = 0o700
	lockFilePerm     = 0o600
	maxStoredKeySize = math.MaxUint32
)

// Driver is the file driver. Its methods are safe for concurrent use, from any number of
// goroutines and processes on the same host.
type Driver struct {
	dir     string
	lockDir string
	defTTL  time.Duration
	codec   driver.Codec
	now     func() time.Time
	sync    bool
	onError func(error)

	stripes     [numStripes]stripe
	watches     watches
	expiryHooks driver.ExpiryHooks

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{} // closed by Close: the sweeper returns
	swept     chan struct{} // closed by the sweeper when it returns; nil without one
}

// stripe is one of the lock files, opened on first use and kept open until Close. mu
// serialises the goroutines of this Driver, flock the processes (and other Drivers).
type stripe struct {
	mu sync.Mutex
	f  *os.File
	fd int
}

var (
	_ driver.Driver         = (*Driver)(nil)
	_ driver.Encoder        = (*Driver)(nil)
	_ driver.Atomic         = (*Driver)(nil)
	_ driver.KeySpace       = (*Driver)(nil)
	_ driver.DefaultTTLer   = (*Driver)(nil)
	_ driver.ExpiryNotifier = (*Driver)(nil)
)

var errClosed = fmt.Errorf("%s%w", errorPrefix, driver.ErrClosed)

// New opens (and creates if needed) the cache directory o.Dir.
func New(o Options) (*Driver, error) {
	switch {
	case !supported:
		return nil, fmt.Errorf("%sno flock(2) on this system: %w", errorPrefix, errors.ErrUnsupported)
	case o.Dir == "":
		return nil, errors.New(errorPrefix + "Options.Dir is required")
	case o.DefaultTTL < 0:
		return nil, fmt.Errorf("%sDefaultTTL %v is negative", errorPrefix, o.DefaultTTL)
	}
	dir, err := filepath.Abs(o.Dir) // a later os.Chdir must not move the cache
	if err != nil {
		return nil, fmt.Errorf("%sDir: %w", errorPrefix, err)
	}
	d := &Driver{
		dir:     dir,
		lockDir: filepath.Join(dir, lockDirName),
		defTTL:  o.DefaultTTL,
		codec:   o.Codec,
		now:     o.Now,
		sync:    o.Sync,
		onError: o.OnError,
		stop:    make(chan struct{}),
	}
	if d.codec == nil {
		d.codec = driver.JSON
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.onError == nil {
		d.onError = func(err error) { slog.Warn(err.Error(), "dir", dir) }
	}
	if err := os.MkdirAll(d.lockDir, dirPerm); err != nil {
		return nil, fmt.Errorf("%screate the directory: %w", errorPrefix, err)
	}
	if err := d.checkMarker(); err != nil {
		return nil, err
	}
	interval := o.SweepInterval
	if interval == 0 {
		interval = defaultSweep
	}
	if interval > 0 {
		d.swept = make(chan struct{})
		go d.sweeper(interval)
	}
	return d, nil
}

// checkMarker makes sure Dir holds this format: it writes Dir/.filecache if missing, and
// refuses a directory whose marker names another format.
func (d *Driver) checkMarker() error {
	path := filepath.Join(d.dir, markerName)
	b, err := readRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Every process writes the same bytes: the rename is idempotent.
		tmp, err := d.writeTemp([]byte(markerContent))
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("%s%w", errorPrefix, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s%w", errorPrefix, err)
	}
	if string(b) != markerContent {
		return fmt.Errorf("%s%s holds %q, not %q: another format or another program's directory", errorPrefix, path, b, markerContent)
	}
	return nil
}

// Dir returns the absolute path of the cache directory.
func (d *Driver) Dir() string { return d.dir }

// Codec returns the codec of Options.Codec; the manager encodes with it.
func (d *Driver) Codec() driver.Codec { return d.codec }

// DefaultTTL returns Options.DefaultTTL.
func (d *Driver) DefaultTTL() time.Duration { return d.defTTL }

func (d *Driver) check(ctx context.Context) error {
	if d.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

func (d *Driver) path(name string) string { return d.dir + string(filepath.Separator) + name }

func (d *Driver) nowNano() int64 { return d.now().UnixNano() }

// expiry returns the expiry to store for a TTL: 0 for none, else now+ttl, saturated.
func (d *Driver) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	now := d.nowNano()
	if now > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return max(now+int64(ttl), 1)
}

func (d *Driver) report(err error) { d.onError(err) }

// ---- stripes ----

func stripeOf(name string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % numStripes)
}

// lock takes the stripe of the file name: the in-process mutex, then flock.
func (d *Driver) lock(name string) (*stripe, error) {
	i := stripeOf(name)
	s := &d.stripes[i]
	s.mu.Lock()
	if d.closed.Load() {
		s.mu.Unlock()
		return nil, errClosed
	}
	if s.f == nil {
		f, err := openLockFile(filepath.Join(d.lockDir, fmt.Sprintf("%02d", i)))
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("%sopen lock file: %w", errorPrefix, err)
		}
		s.f, s.fd = f, int(f.Fd())
	}
	if err := flock(s.fd, true); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%sflock %s: %w", errorPrefix, s.f.Name(), err)
	}
	return s, nil
}

// openLockFile opens (creating it) the lock file at path, never through a symbolic link.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|openNoFollow|openNonblock, lockFilePerm)
	if err != nil {
		if nerr := checkRegular(path); nerr != nil {
			return nil, nerr
		}
		return nil, err
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		_ = f.Close()
		if err != nil {
			return nil, err
		}
		return nil, notRegular(path, info.Mode())
	}
	return f, nil
}

func (d *Driver) unlock(s *stripe) {
	if err := flock(s.fd, false); err != nil {
		// Never seen in practice; closing the file drops the lock for sure.
		d.report(fmt.Errorf("%sunlock %s: %w", errorPrefix, s.f.Name(), err))
		_ = s.f.Close()
		s.f = nil
	}
	s.mu.Unlock()
}

// ---- files ----

// writeTemp writes data to a new temporary file in Dir and returns its path.
func (d *Driver) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(d.dir, tempPrefix)
	if err != nil {
		return "", fmt.Errorf("%s%w", errorPrefix, err)
	}
	_, err = f.Write(data)
	if err == nil && d.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("%s%w", errorPrefix, err)
	}
	return f.Name(), nil
}

// commit renames the temporary file over path. The caller holds path's stripe. The
// rename replaces whatever name is at path (a symbolic link itself, never its target);
// over a directory it fails, with an error matching ErrNotRegular.
func (d *Driver) commit(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		if nerr := checkRegular(path); nerr != nil {
			return nerr
		}
		return fmt.Errorf("%s%w", errorPrefix, err)
	}
	if d.sync {
		return syncDir(d.dir)
	}
	return nil
}

// remove unlinks path; a missing file is not an error, a directory one matching
// ErrNotRegular (never removed). The caller holds its stripe.
func (d *Driver) remove(path string) error {
	if err := unlink(path); err != nil {
		if errors.Is(err, ErrNotRegular) {
			return err
		}
		return fmt.Errorf("%s%w", errorPrefix, err)
	}
	if d.sync {
		return syncDir(d.dir)
	}
	return nil
}

// syncDir makes the renames and removals in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%s%w", errorPrefix, err)
	}
	err = f.Sync()
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("%s%w", errorPrefix, err)
	}
	return nil
}

// state is what a read of one key's file found.
type state uint8

const (
	missing state = iota // no file
	live                 // the key's live entry
	dead                 // an entry that has expired, a corrupt file, or another key's file
)

// read reads key's file at path. A corrupt file, or a file holding another key, is
// reported and comes back as dead; an I/O error other than a missing file is returned,
// and so is a path that is not a regular file (matching ErrNotRegular), which is never
// opened in a way that could block or follow a link.
func (d *Driver) read(key, path string) (entry, state, error) {
	b, err := readRegular(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return entry{}, missing, nil
		case errors.Is(err, ErrNotRegular):
			return entry{}, missing, err
		}
		return entry{}, missing, fmt.Errorf("%s%w", errorPrefix, err)
	}
	e, err := decodeEntry(b)
	if err != nil {
		d.report(fmt.Errorf("%s: %w", path, err))
		return entry{}, dead, nil
	}
	if e.key != key {
		d.report(fmt.Errorf("%s: %w: holds key %q, not %q", path, ErrCorrupt, e.key, key))
		return entry{}, dead, nil
	}
	if !e.live(d.nowNano()) {
		return e, dead, nil
	}
	return e, live, nil
}

func bytesOf(v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	}
	return nil, fmt.Errorf("%svalue is %T; a byte driver stores the codec's []byte", errorPrefix, v)
}

func checkKey(key string) error {
	if key == "" {
		return errors.New(errorPrefix + "empty key")
	}
	if len(key) > maxStoredKeySize {
		return fmt.Errorf("%skey of %d bytes is too long", errorPrefix, len(key))
	}
	return nil
}

// ---- driver.Driver ----

// Get returns the live value under key, as the []byte that was written. An expired entry
// is a miss and is removed; a corrupt file is a miss, reported to Options.OnError. A
// key whose file is not a regular file (a named pipe, a directory, a symbolic link) is
// an error matching [ErrNotRegular], returned at once.
func (d *Driver) Get(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, err
	}
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	name := fileName(key)
	path := d.path(name)
	e, st, err := d.read(key, path)
	if err != nil || st == missing {
		return nil, false, err
	}
	if st == dead {
		if e.expires != 0 {
			d.removeExpired(key, name, path)
		}
		return nil, false, nil
	}
	return e.val, true, nil
}

// removeExpired removes key's file if it still holds an expired entry when looked at
// under the stripe lock: a value written in between stays.
func (d *Driver) removeExpired(key, name, path string) {
	s, err := d.lock(name)
	if err != nil {
		return
	}
	defer d.unlock(s)
	e, st, err := d.read(key, path)
	if err == nil && st == dead && e.expires != 0 {
		if err := d.remove(path); err != nil {
			d.report(err)
			return
		}
		d.expiryHooks.Expired(key)
	}
}

// OnExpire adds fn to the functions called with the key of each entry the driver removes
// because its TTL passed: when Get finds it expired, or when the sweep (background or
// [Driver.Sweep]) removes it. An expired file that a write replaces, or that another
// process removes, is not reported here. With several processes on one Dir, each
// reports the removals it made.
func (d *Driver) OnExpire(fn func(key string)) { d.expiryHooks.OnExpire(fn) }

// Set stores e, replacing what was there: an entry, a corrupt file, or a named pipe or
// a symbolic link (the link, never its target) that another program put there. Over a
// directory it fails with an error matching [ErrNotRegular].
func (d *Driver) Set(ctx context.Context, e driver.Entry) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	if err := checkKey(e.Key); err != nil {
		return err
	}
	v, err := bytesOf(e.Value)
	if err != nil {
		return err
	}
	name := fileName(e.Key)
	// The file is written outside the lock: only the rename needs it.
	tmp, err := d.writeTemp(encodeEntry(e.Key, v, d.expiry(e.TTL)))
	if err != nil {
		return err
	}
	s, err := d.lock(name)
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	defer d.unlock(s)
	return d.commit(tmp, d.path(name))
}

// Delete removes the keys' files. It unlinks whatever file has a key's name (a named
// pipe or a symbolic link too, never the link's target) but fails on a directory, with
// an error matching [ErrNotRegular].
func (d *Driver) Delete(ctx context.Context, keys ...string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	for _, key := range keys {
		if err := checkKey(key); err != nil {
			return err
		}
		name := fileName(key)
		s, err := d.lock(name)
		if err != nil {
			return err
		}
		err = d.remove(d.path(name))
		d.unlock(s)
		if err != nil {
			return err
		}
	}
	return nil
}

// Close stops the sweep and closes the lock files. The files in Dir stay: another
// process, or the next New on the same Dir, reads them. Afterwards every method returns
// an error matching driver.ErrClosed.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		close(d.stop)
		if d.swept != nil {
			<-d.swept
		}
		d.watches.close()
		for i := range d.stripes {
			s := &d.stripes[i]
			s.mu.Lock() // waits for the operation holding it, if any
			if s.f != nil {
				_ = s.f.Close()
				s.f = nil
			}
			s.mu.Unlock()
		}
	})
	return nil
}

// ---- capabilities ----

// SetIf writes e when cond holds, atomically across processes.
func (d *Driver) SetIf(ctx context.Context, e driver.Entry, cond driver.Condition) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, err
	}
	if cond != driver.IfAbsent && cond != driver.IfPresent {
		return false, fmt.Errorf("%sunknown condition %v", errorPrefix, cond)
	}
	if err := checkKey(e.Key); err != nil {
		return false, err
	}
	v, err := bytesOf(e.Value)
	if err != nil {
		return false, err
	}
	name := fileName(e.Key)
	path := d.path(name)
	// IfPresent writes over a live entry, IfAbsent over anything else.
	ok := func(st state) bool { return (st == live) == (cond == driver.IfPresent) }
	// A first look without the lock: a file is replaced only by rename, so this read is
	// a consistent snapshot, and a refusal decided on it is a refusal at that instant.
	// A held lock is refused without taking any lock at all.
	if _, st, err := d.read(e.Key, path); err != nil {
		return false, err
	} else if !ok(st) {
		return false, nil
	}
	s, err := d.lock(name)
	if err != nil {
		return false, err
	}
	defer d.unlock(s)
	if _, st, err := d.read(e.Key, path); err != nil {
		return false, err
	} else if !ok(st) {
		return false, nil
	}
	tmp, err := d.writeTemp(encodeEntry(e.Key, v, d.expiry(e.TTL)))
	if err != nil {
		return false, err
	}
	if err := d.commit(tmp, path); err != nil {
		return false, err
	}
	return true, nil
}

// CompareAndDelete deletes key if its live value is old, a []byte, atomically across
// processes.
func (d *Driver) CompareAndDelete(ctx context.Context, key string, old any) (bool, error) {
	return d.ifHolds(ctx, key, old, func(path string, _ entry) error { return d.remove(path) })
}

// Increment adds delta to the decimal integer under key, atomically across processes,
// keeping the entry's expiry. A missing, expired or corrupt entry counts as 0 and gets
// ttlIfNew.
func (d *Driver) Increment(ctx context.Context, key string, delta int64, ttlIfNew time.Duration) (int64, error) {
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	name := fileName(key)
	path := d.path(name)
	s, err := d.lock(name)
	if err != nil {
		return 0, err
	}
	defer d.unlock(s)
	e, st, err := d.read(key, path)
	if err != nil {
		return 0, err
	}
	n, expires := delta, int64(0)
	if st == live {
		cur, err := strconv.ParseInt(string(bytes.TrimSpace(e.val)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%sincrement %q: %w: holds %.40q", errorPrefix, key, driver.ErrNotInteger, e.val)
		}
		n = cur + delta
		if (delta > 0 && n < cur) || (delta < 0 && n > cur) {
			return 0, fmt.Errorf("%sincrement %q: %w: %d%+d overflows int64", errorPrefix, key, driver.ErrNotInteger, cur, delta)
		}
		expires = e.expires
	} else {
		expires = d.expiry(ttlIfNew)
	}
	tmp, err := d.writeTemp(encodeEntry(key, strconv.AppendInt(nil, n, 10), expires))
	if err != nil {
		return 0, err
	}
	if err := d.commit(tmp, path); err != nil {
		return 0, err
	}
	return n, nil
}

// Pull gets and deletes key in one step, atomically across processes.
func (d *Driver) Pull(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, err
	}
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	name := fileName(key)
	path := d.path(name)
	s, err := d.lock(name)
	if err != nil {
		return nil, false, err
	}
	defer d.unlock(s)
	e, st, err := d.read(key, path)
	if err != nil || st == missing {
		return nil, false, err
	}
	// A dead file (expired or corrupt) goes too: it is this key's and worthless.
	if err := d.remove(path); err != nil {
		return nil, false, err
	}
	if st != live {
		return nil, false, nil
	}
	return e.val, true, nil
}

// DeleteNamespace removes ns and every key under "ns.". It reads the directory: O(files).
// It is not atomic: a key written under ns while it runs may survive. Files with a
// key's name that are not regular files are left and reported to Options.OnError, as
// in [Driver.Flush].
func (d *Driver) DeleteNamespace(ctx context.Context, ns string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	return d.removeWhere(ctx, "delete namespace", func(p parsedName) bool { return p.mayBeUnder(ns) },
		func(key string) bool { return inNamespace(key, ns) })
}

// Flush removes every entry file. Dir, its lock files, and files the driver did not
// write stay. It is not atomic: a key written while it runs may survive.
//
// Something with an entry's name that is not a regular file (a directory, a named pipe,
// a symbolic link, which the driver never writes) is not removed: Flush reports each to
// Options.OnError (an error matching [ErrNotRegular]), on every call, and goes on with
// the rest. It is not Flush's error: Flush returns nil when it removed every entry of
// the cache's. An entry it fails to remove does not stop it either: at the end it
// returns an error that counts those.
func (d *Driver) Flush(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	return d.removeWhere(ctx, "flush", func(parsedName) bool { return true }, nil)
}

// removeWhere removes the entry files whose parsed name passes byName and, when byKey is
// set, whose key passes byKey (read from the file for a hashed name). It goes through
// the whole directory whatever it meets (see Flush); only a closed driver or a done ctx
// stop it.
func (d *Driver) removeWhere(ctx context.Context, op string, byName func(parsedName) bool, byKey func(string) bool) error {
	var sk skipped
	err := d.eachName(ctx, "", func(name string) (bool, error) {
		p, ok := parseName(name)
		if !ok || !byName(p) {
			return true, nil
		}
		if err := d.removeEntry(name, p, byKey); err != nil {
			if errors.Is(err, driver.ErrClosed) {
				return false, err
			}
			sk.add(d, err)
		}
		return true, nil
	})
	return errors.Join(err, sk.err(op))
}

// eachName calls fn with the name of every file in the directory, 256 names per read,
// until fn returns false or an error, or ctx ends (checked before each name). op starts
// the message of a directory read error ("scan: ").
func (d *Driver) eachName(ctx context.Context, op string, fn func(name string) (more bool, err error)) error {
	f, err := os.Open(d.dir)
	if err != nil {
		return fmt.Errorf("%s%s%w", errorPrefix, op, err)
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, name := range names {
			if err := d.check(ctx); err != nil {
				return err
			}
			if more, err := fn(name); err != nil || !more {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s%s%w", errorPrefix, op, err)
		}
	}
}

// removeEntry removes the entry file name under its stripe lock. Anything but a regular
// file is an error matching ErrNotRegular, and stays.
func (d *Driver) removeEntry(name string, p parsedName, byKey func(string) bool) error {
	path := d.path(name)
	s, err := d.lock(name)
	if err != nil {
		return err
	}
	defer d.unlock(s)
	if err := checkRegular(path); err != nil {
		return err
	}
	if byKey != nil {
		key := p.key
		if p.hashed {
			_, k, err := readHead(path, true)
			if errors.Is(err, ErrNotRegular) {
				return err // replaced since the check
			}
			if err != nil {
				// Gone, or corrupt: a corrupt file's key is unknown; the sweep removes it.
				return nil
			}
			key = k
		}
		if !byKey(key) {
			return nil
		}
	}
	return d.remove(path)
}

// isTemp reports whether name is one of the driver's temporary files.
func isTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }
