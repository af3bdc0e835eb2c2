package linearize

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"

	"github.com/cachekit/cache/internal/testkit/faultrun"
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

// Recorder writes one client's history ([faultrun.File]): an invocation is in the file
// before the operation starts, and stays there if the process is killed during it (the
// operation's outcome is then unknown).
type Recorder struct {
	f   *faultrun.File
	mu  sync.Mutex
	seq int64
}

// NewRecorder creates the history file path for client.
func NewRecorder(path string, client int) (*Recorder, error) {
	f, err := faultrun.Create(path)
	if err != nil {
		return nil, err
	}
	r := &Recorder{f: f}
	r.f.WriteJSON(line{Client: client, PID: os.Getpid()})
	return r, r.f.Err()
}

// Invoke records the invocation of in at t and returns its sequence number, for Return.
func (r *Recorder) Invoke(t int64, in Input) int64 {
	r.mu.Lock()
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	r.f.WriteJSON(line{Seq: seq, T: t, Op: in.Op.String(), Key: in.Key, A: in.A, B: in.B})
	return seq
}

// Return records the return of operation seq at t: res is resOK with out, or resFail or
// resInfo with the error.
func (r *Recorder) Return(seq, t int64, res string, out Output, err error) {
	l := line{Seq: seq, T: t, Res: res, OK: out.OK, Found: out.Found, V: out.V}
	if err != nil {
		l.Err = errorKind(err)
	}
	r.f.WriteJSON(l)
}

// Err returns the first write error.
func (r *Recorder) Err() error { return r.f.Err() }

// Close closes the file.
func (r *Recorder) Close() error { return r.f.Close() }

// errorKind shortens an error to its kind, for counting: keys (the quoted parts) out,
// and the text up to the first address that varies from call to call.
func errorKind(err error) string {
	return faultrun.ErrorKind(quoted.ReplaceAllString(err.Error(), `"…"`), 160)
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
func ReadHistory(path string) ([]Record, error) { return faultrun.ReadFile(path, readHistory) }

func readHistory(rd io.Reader) ([]Record, error) {
	var recs []Record
	open := map[int64]int{} // seq to index in recs
	client, pid := 0, 0
	err := faultrun.ReadLines(rd, func(n int, l line, text string) error {
		switch {
		case l.PID != 0:
			client, pid = l.Client, l.PID
		case l.Op != "":
			op, ok := parseOp(l.Op)
			if !ok {
				return fmt.Errorf("line %d: unknown operation %q", n, l.Op)
			}
			if _, dup := open[l.Seq]; dup {
				return fmt.Errorf("line %d: operation %d invoked twice", n, l.Seq)
			}
			open[l.Seq] = len(recs)
			recs = append(recs, Record{Client: client, PID: pid, In: Input{Op: op, Key: l.Key, A: l.A, B: l.B}, Call: l.T})
		case l.Res != "":
			i, ok := open[l.Seq]
			if !ok {
				return fmt.Errorf("line %d: return of operation %d, never invoked or returned twice", n, l.Seq)
			}
			delete(open, l.Seq)
			r := &recs[i]
			if l.T < r.Call {
				return fmt.Errorf("line %d: operation %d returns (%d) before its call (%d)", n, l.Seq, l.T, r.Call)
			}
			r.Return, r.Res, r.Err = l.T, l.Res, l.Err
			r.Out = Output{OK: l.OK, Found: l.Found, V: l.V}
		default:
			return fmt.Errorf("line %d: neither a call nor a return: %q", n, text)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// ReadHistories reads every client's file and returns their records, in file order. A
// missing file is a client killed before it opened it: it did nothing.
func ReadHistories(paths []string) ([]Record, error) {
	hs, err := faultrun.ReadFiles(paths, ReadHistory)
	var all []Record
	for _, recs := range hs {
		all = append(all, recs...)
	}
	return all, err
}
