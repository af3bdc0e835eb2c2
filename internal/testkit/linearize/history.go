package linearize

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
)

// The results of an operation, in a return line.
const (
	resOK   = "ok"   // returned; the output is what it returned
	resFail = "fail" // failed with an error that proves it did nothing: left out of the history
	resInfo = "info" // failed without saying whether it took effect: its outcome is unknown
)

// line is one line of a history file: an invocation ("o" set), a return ("r" set), or
// the first line of the file ("pid" set).
type line struct {
	Client int    `json:"c,omitempty"`
	PID    int    `json:"pid,omitempty"`
	Seq    int64  `json:"i,omitempty"`
	T      int64  `json:"t,omitempty"`
	Op     string `json:"o,omitempty"`
	Key    string `json:"k,omitempty"`
	A      int64  `json:"a,omitempty"`
	B      int64  `json:"b,omitempty"`
	Res    string `json:"r,omitempty"`
	OK     bool   `json:"ok,omitempty"`
	Found  bool   `json:"f,omitempty"`
	V      int64  `json:"v,omitempty"`
	Err    string `json:"e,omitempty"`
}

// Recorder writes one client's history, one line per write(2) on an unbuffered file:
// an invocation is in the file before the operation starts, and stays there if the
// process is killed during it (the operation's outcome is then unknown).
type Recorder struct {
	mu     sync.Mutex
	f      *os.File
	client int
	seq    int64
	buf    []byte
	err    error
}

// NewRecorder creates the history file path for client.
func NewRecorder(path string, client int) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	r := &Recorder{f: f, client: client}
	r.write(line{Client: client, PID: os.Getpid()})
	return r, r.err
}

func (r *Recorder) write(l line) {
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // cannot happen: plain fields
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	r.buf = append(append(r.buf[:0], b...), '\n')
	if _, err := r.f.Write(r.buf); err != nil {
		r.err = err
	}
}

// Invoke records the invocation of in at t and returns its sequence number, for Return.
func (r *Recorder) Invoke(t int64, in Input) int64 {
	r.mu.Lock()
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	r.write(line{Seq: seq, T: t, Op: in.Op.String(), Key: in.Key, A: in.A, B: in.B})
	return seq
}

// Return records the return of operation seq at t: res is resOK with out, or resFail or
// resInfo with the error.
func (r *Recorder) Return(seq, t int64, res string, out Output, err error) {
	l := line{Seq: seq, T: t, Res: res, OK: out.OK, Found: out.Found, V: out.V}
	if err != nil {
		l.Err = errorKind(err)
	}
	r.write(l)
}

// Err returns the first write error.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close closes the file.
func (r *Recorder) Close() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	return r.Err()
}

// errorKind shortens an error to its kind, for counting: keys (the quoted parts) out,
// and the text up to the first address that varies from call to call.
func errorKind(err error) string {
	s := quoted.ReplaceAllString(err.Error(), `"…"`)
	if i := strings.Index(s, "127.0.0.1:"); i >= 0 {
		s = s[:i] + "<addr>"
	}
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

var quoted = regexp.MustCompile(`"[^"]*"`)

// Record is one operation of a history, as its client recorded it.
type Record struct {
	Client int
	PID    int
	In     Input
	Call   int64 // CLOCK_MONOTONIC ns, read before the operation started
	Return int64 // read after it ended; 0 when it never returned (the client was killed)
	Res    string
	Out    Output
	Err    string
}

// Unknown reports whether the record's outcome is unknown: it failed without saying
// whether it took effect, or its client was killed during it.
func (r Record) Unknown() bool { return r.Res == resInfo || r.Res == "" }

// ReadHistory reads a client's history file. A last line cut short (the client was
// killed while writing it) is ignored; any other line that does not parse is an error.
func ReadHistory(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHistory(f)
}

func readHistory(rd io.Reader) ([]Record, error) {
	var recs []Record
	open := map[int64]int{} // seq to index in recs
	client, pid := 0, 0
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 1<<20)
	var pending error // a bad line: an error unless it is the last one
	n := 0
	for sc.Scan() {
		n++
		if pending != nil {
			return nil, pending
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			pending = fmt.Errorf("line %d: %q: %w", n, sc.Text(), err)
			continue
		}
		switch {
		case l.PID != 0:
			client, pid = l.Client, l.PID
		case l.Op != "":
			op, ok := parseOp(l.Op)
			if !ok {
				return nil, fmt.Errorf("line %d: unknown operation %q", n, l.Op)
			}
			if _, dup := open[l.Seq]; dup {
				return nil, fmt.Errorf("line %d: operation %d invoked twice", n, l.Seq)
			}
			open[l.Seq] = len(recs)
			recs = append(recs, Record{Client: client, PID: pid, In: Input{Op: op, Key: l.Key, A: l.A, B: l.B}, Call: l.T})
		case l.Res != "":
			i, ok := open[l.Seq]
			if !ok {
				return nil, fmt.Errorf("line %d: return of operation %d, never invoked or returned twice", n, l.Seq)
			}
			delete(open, l.Seq)
			r := &recs[i]
			if l.T < r.Call {
				return nil, fmt.Errorf("line %d: operation %d returns (%d) before its call (%d)", n, l.Seq, l.T, r.Call)
			}
			r.Return, r.Res, r.Err = l.T, l.Res, l.Err
			r.Out = Output{OK: l.OK, Found: l.Found, V: l.V}
		default:
			return nil, fmt.Errorf("line %d: neither a call nor a return: %q", n, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}

// ReadHistories reads every client's file and returns their records, in file order. A
// missing file is a client killed before it opened it: it did nothing.
func ReadHistories(paths []string) ([]Record, error) {
	var all []Record
	var errs []error
	for _, p := range paths {
		recs, err := ReadHistory(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		all = append(all, recs...)
	}
	return all, errors.Join(errs...)
}
