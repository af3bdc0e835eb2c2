package nemesis

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// Section is one critical section of one holder: from its first action to its last.
type Section struct {
	Holder     int           `json:"holder"` // the holder process (a replacement is a new holder)
	PID        int           `json:"pid"`
	Key        string        `json:"key"`
	Enter      int64         `json:"enter"` // CLOCK_MONOTONIC ns of the first action
	Exit       int64         `json:"exit"`  // CLOCK_MONOTONIC ns of the last action
	Token      int64         `json:"token"` // fencing token; 0 without one
	TTL        time.Duration `json:"ttl"`
	AutoExtend bool          `json:"auto_extend"`
	Actions    int           `json:"actions"`
	// Lost: Lock's error matched cache.ErrLockLost (the lease ended inside fn).
	Lost bool `json:"lost"`
	// Open: the holder died inside the section (SIGKILL); Exit is its last recorded
	// action, after which it did nothing.
	Open bool `json:"open"`
}

func (s Section) String() string {
	open := ""
	if s.Open {
		open = " (killed inside)"
	}
	return fmt.Sprintf("holder %d (pid %d) %s [%d, %d] %v, token %d, ttl %v, autoextend %v, %d actions, lost %v%s",
		s.Holder, s.PID, s.Key, s.Enter, s.Exit, time.Duration(s.Exit-s.Enter), s.Token, s.TTL, s.AutoExtend, s.Actions, s.Lost, open)
}

// Summary is what a holder counts besides its sections, written when it ends cleanly.
type Summary struct {
	Attempts    int            `json:"attempts"`     // Lock calls
	Acquired    int            `json:"acquired"`     // fn ran
	NotAcquired int            `json:"not_acquired"` // held by another (or Wait elapsed)
	Lost        int            `json:"lost"`         // Lock's error matched ErrLockLost
	Errors      int            `json:"errors"`       // other errors from Lock: the store unreachable
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	NoAction    int            `json:"no_action"` // fn ran but its lease had ended before its first action
}

func (s *Summary) add(o Summary) {
	s.Attempts += o.Attempts
	s.Acquired += o.Acquired
	s.NotAcquired += o.NotAcquired
	s.Lost += o.Lost
	s.Errors += o.Errors
	s.NoAction += o.NoAction
	for k, n := range o.ErrorKinds {
		if s.ErrorKinds == nil {
			s.ErrorKinds = map[string]int{}
		}
		s.ErrorKinds[k] += n
	}
}

// line is one line of a history file. Op is one of:
//
//	"start" Holder, PID: the process started
//	"open"  T, Key, Tok, TTL, AE: the first action of a section, at T
//	"a"     T: a further action of the open section
//	"close" Lost: the open section ended (its exit is its last action)
//	"err"   Err: Lock failed (not counted in the summary until the end)
//	"sum"   Sum: the holder's counts, when it ends cleanly
type line struct {
	Op     string   `json:"op"`
	T      int64    `json:"t,omitempty"`
	Holder int      `json:"h,omitempty"`
	PID    int      `json:"pid,omitempty"`
	Key    string   `json:"k,omitempty"`
	Tok    int64    `json:"tok,omitempty"`
	TTL    int64    `json:"ttl,omitempty"`
	AE     bool     `json:"ae,omitempty"`
	Lost   bool     `json:"lost,omitempty"`
	Err    string   `json:"err,omitempty"`
	Sum    *Summary `json:"sum,omitempty"`
}

// Recorder writes a holder's history ([faultrun.File]): what a line says has happened
// is on its way to the file before the next action, and stays there if the process is
// killed.
type Recorder struct {
	f *faultrun.File
}

// NewRecorder creates the history file path for holder.
func NewRecorder(path string, holder int) (*Recorder, error) {
	f, err := faultrun.Create(path)
	if err != nil {
		return nil, err
	}
	r := &Recorder{f: f}
	r.f.WriteJSON(line{Op: "start", Holder: holder, PID: os.Getpid()})
	return r, r.f.Err()
}

// Open records the first action of a section, at t.
func (r *Recorder) Open(t int64, key string, token int64, ttl time.Duration, autoExtend bool) {
	r.f.WriteJSON(line{Op: "open", T: t, Key: key, Tok: token, TTL: int64(ttl), AE: autoExtend})
}

// Act records a further action of the open section, at t.
func (r *Recorder) Act(t int64) {
	var b [48]byte
	r.f.WriteLine(append(strconv.AppendInt(append(b[:0], `{"op":"a","t":`...), t, 10), '}'))
}

// Close records the end of the open section.
func (r *Recorder) Close(lost bool) { r.f.WriteJSON(line{Op: "close", Lost: lost}) }

// Error records a failed Lock call.
func (r *Recorder) Error(err error) {
	r.f.WriteJSON(line{Op: "err", T: faultrun.Mono(), Err: errorKind(err)})
}

// Summary records the holder's counts; the last line of a clean exit.
func (r *Recorder) Summary(s Summary) { r.f.WriteJSON(line{Op: "sum", Sum: &s}) }

// Err returns the first write error.
func (r *Recorder) Err() error { return r.f.Err() }

// CloseFile closes the file.
func (r *Recorder) CloseFile() error { return r.f.Close() }

// errorKind shortens an error to its kind, for counting: the text up to the first
// address or number that varies from call to call.
func errorKind(err error) string { return faultrun.ErrorKind(err.Error(), 140) }

// History is what one holder's file says.
type History struct {
	Holder   int
	PID      int
	Sections []Section
	Summary  *Summary // nil when the holder did not end cleanly (killed)
	Errors   int      // "err" lines
	// ErrorKinds counts the "err" lines by kind.
	ErrorKinds map[string]int
}

// ReadHistory reads a holder's history file. A last line cut short (the holder was
// killed while writing it) is ignored; any other line that does not parse is an error.
func ReadHistory(path string) (History, error) { return faultrun.ReadFile(path, readHistory) }

func readHistory(rd io.Reader) (History, error) {
	var h History
	var cur *Section
	err := faultrun.ReadLines(rd, func(n int, l line, _ string) error {
		switch l.Op {
		case "start":
			h.Holder, h.PID = l.Holder, l.PID
		case "open":
			if cur != nil {
				return fmt.Errorf("line %d: a section opens inside another", n)
			}
			cur = &Section{Holder: h.Holder, PID: h.PID, Key: l.Key, Enter: l.T, Exit: l.T, Token: l.Tok,
				TTL: time.Duration(l.TTL), AutoExtend: l.AE, Actions: 1}
		case "a":
			if cur == nil {
				return fmt.Errorf("line %d: an action outside a section", n)
			}
			if l.T < cur.Exit {
				return fmt.Errorf("line %d: time goes backwards (%d after %d)", n, l.T, cur.Exit)
			}
			cur.Exit = l.T
			cur.Actions++
		case "close":
			if cur == nil {
				return fmt.Errorf("line %d: a close outside a section", n)
			}
			cur.Lost = l.Lost
			h.Sections = append(h.Sections, *cur)
			cur = nil
		case "err":
			h.Errors++
			if h.ErrorKinds == nil {
				h.ErrorKinds = map[string]int{}
			}
			h.ErrorKinds[l.Err]++
		case "sum":
			h.Summary = l.Sum
		default:
			return fmt.Errorf("line %d: unknown op %q", n, l.Op)
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	if cur != nil { // killed inside: every action it took is recorded
		cur.Open = true
		h.Sections = append(h.Sections, *cur)
	}
	return h, nil
}

// Histories reads every holder's file and returns their sections, sorted by key then
// entry, and their counts added up (killed holders' counts are their "err" lines only).
// A missing file is a holder killed before it opened it: it did nothing.
func Histories(paths []string) ([]Section, Summary, []History, error) {
	hs, err := faultrun.ReadFiles(paths, ReadHistory)
	var all []Section
	var sum Summary
	for _, h := range hs {
		all = append(all, h.Sections...)
		if h.Summary != nil {
			sum.add(*h.Summary)
		} else {
			sum.add(Summary{Errors: h.Errors, ErrorKinds: h.ErrorKinds})
		}
	}
	sortSections(all)
	return all, sum, hs, err
}

func sortSections(s []Section) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Key != s[j].Key {
			return s[i].Key < s[j].Key
		}
		if s[i].Enter != s[j].Enter {
			return s[i].Enter < s[j].Enter
		}
		return s[i].Holder < s[j].Holder
	})
}
