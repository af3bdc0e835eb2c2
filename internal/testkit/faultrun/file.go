package faultrun

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
)

// File is a history file being written, one line per write(2) on an unbuffered file:
// what a line says has happened is on its way to the file before the next step, and
// stays there if the process is killed. Its methods are safe for concurrent use.
type File struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
	err error
}

// Create creates (or empties) the history file path.
func Create(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &File{f: f}, nil
}

// WriteJSON writes v as a line of JSON. v must marshal: a value of plain fields.
func (w *File) WriteJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a bug of the caller: plain fields always marshal
	}
	w.WriteLine(b)
}

// WriteLine writes b, a line without its newline. After a write error it does nothing.
func (w *File) WriteLine(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.buf = append(append(w.buf[:0], b...), '\n')
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = err
	}
}

// Err returns the first write error.
func (w *File) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close closes the file, and returns its error or the first write error.
func (w *File) Close() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	return w.Err()
}

// ReadLines decodes each line of rd, as JSON, into a new L and hands it to fn with its
// number (from 1) and text; fn's error ends the read. A last line that does not parse
// (cut short: its writer was killed while writing it) is ignored; any other line that
// does not parse is an error.
func ReadLines[L any](rd io.Reader, fn func(n int, l L, text string) error) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 1<<20)
	var pending error // a bad line: an error unless it is the last one
	n := 0
	for sc.Scan() {
		n++
		if pending != nil {
			return pending
		}
		var l L
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			pending = fmt.Errorf("line %d: %q: %w", n, sc.Text(), err)
			continue
		}
		if err := fn(n, l, sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ReadFile opens path and hands it to read.
func ReadFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return read(f)
}

// ReadFiles reads each of paths with read and returns what it read, in order. A
// missing file is left out: its child was killed before it created it, and did nothing.
// The errors of the others are joined, each after its path.
func ReadFiles[T any](paths []string, read func(path string) (T, error)) ([]T, error) {
	var all []T
	var errs []error
	for _, p := range paths {
		v, err := read(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		all = append(all, v)
	}
	return all, errors.Join(errs...)
}

// ErrorKind shortens an error's text s to its kind, for counting: the text up to the
// first loopback address, which varies from call to call, and at most max bytes.
func ErrorKind(s string, max int) string {
	if i := strings.Index(s, "127.0.0.1:"); i >= 0 {
		s = s[:i] + "<addr>"
	}
	if len(s) > max {
		s = s[:max]
	}
	return s
}
