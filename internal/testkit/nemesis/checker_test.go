package nemesis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sec(holder int, key string, enter, exit, token int64) Section {
	return Section{Holder: holder, Key: key, Enter: enter, Exit: exit, Token: token}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name             string
		secs             []Section
		overlaps, disord int
	}{
		{"disjoint", []Section{sec(1, "a", 0, 10, 1), sec(2, "a", 11, 20, 2), sec(1, "a", 21, 30, 3)}, 0, 0},
		{"other keys overlap freely", []Section{sec(1, "a", 0, 10, 1), sec(2, "b", 5, 20, 1)}, 0, 0},
		{"overlap", []Section{sec(1, "a", 0, 10, 1), sec(2, "a", 5, 20, 2)}, 1, 0},
		{"shared instant", []Section{sec(1, "a", 0, 10, 1), sec(2, "a", 10, 20, 2)}, 1, 0},
		{"contained, unsorted", []Section{sec(2, "a", 2, 3, 2), sec(1, "a", 0, 10, 1), sec(3, "a", 4, 5, 3)}, 2, 0},
		{"long one overlaps a later one", []Section{sec(1, "a", 0, 100, 1), sec(2, "a", 10, 20, 2), sec(3, "a", 50, 60, 3)}, 2, 0},
		{"same holder never overlaps itself", []Section{sec(1, "a", 0, 10, 1), sec(1, "a", 5, 20, 2)}, 0, 0},
		{"token repeated", []Section{sec(1, "a", 0, 10, 5), sec(2, "a", 11, 20, 5)}, 0, 1},
		{"token back after a higher one", []Section{sec(1, "a", 0, 10, 7), sec(2, "a", 11, 20, 3), sec(3, "a", 21, 30, 6), sec(1, "a", 31, 40, 8)}, 0, 2},
		{"no token: not checked", []Section{sec(1, "a", 0, 10, 7), sec(2, "a", 11, 20, 0)}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Check(c.secs)
			if len(r.Overlaps) != c.overlaps || len(r.OutOfOrder) != c.disord || r.Sections != len(c.secs) {
				t.Errorf("Check = %v; want %d overlaps, %d tokens out of order", r, c.overlaps, c.disord)
			}
		})
	}
	r := Check([]Section{sec(1, "a", 0, 100, 1), sec(2, "a", 40, 60, 2)})
	if o := r.Overlaps[0]; o.A.Holder != 1 || o.B.Holder != 2 || o.By() != 20 {
		t.Errorf("overlap = %+v, by %v; want holder 1 then 2, by 20ns", o, o.By())
	}
}

// TestHistoryRoundTrip: what a Recorder writes, ReadHistory reads back; a section left
// open (the holder killed inside it) ends at its last action, and a torn last line is
// ignored.
func TestHistoryRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	rec, err := NewRecorder(path, 7)
	if err != nil {
		t.Fatal(err)
	}
	rec.Open(100, "k0", 3, 300*time.Millisecond, true)
	rec.Act(150)
	rec.Act(200)
	rec.Close(true)
	rec.Error(os.ErrDeadlineExceeded)
	rec.Open(300, "k1", 4, 200*time.Millisecond, false)
	rec.Act(310)
	if err := rec.CloseFile(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"op":"a","t":3`) // killed mid-write
	f.Close()
	h, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Section{
		{Holder: 7, PID: os.Getpid(), Key: "k0", Enter: 100, Exit: 200, Token: 3, TTL: 300 * time.Millisecond, AutoExtend: true, Actions: 3, Lost: true},
		{Holder: 7, PID: os.Getpid(), Key: "k1", Enter: 300, Exit: 310, Token: 4, TTL: 200 * time.Millisecond, Actions: 2, Open: true},
	}
	if len(h.Sections) != 2 || h.Sections[0] != want[0] || h.Sections[1] != want[1] || h.Errors != 1 || h.Summary != nil {
		t.Fatalf("history = %+v; want sections %+v and 1 error", h, want)
	}
}

// TestHistoryBadLine: a line that does not parse, other than a torn last one, is an
// error, not a silently shorter history.
func TestHistoryBadLine(t *testing.T) {
	_, err := readHistory(strings.NewReader("{\"op\":\"start\",\"h\":1}\nnonsense\n{\"op\":\"a\",\"t\":1}\n"))
	if err == nil {
		t.Fatal("readHistory accepted a bad line in the middle")
	}
}

// TestTestdataHistory: the history in testdata, of two holders of one key, one of which
// acted after its lease had ended, has the overlap and the token out of order it shows.
func TestTestdataHistory(t *testing.T) {
	secs, _, _, err := Histories([]string{"testdata/holder-a.jsonl", "testdata/holder-b.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	r := Check(secs)
	if r.Sections != 3 || len(r.Overlaps) != 1 || len(r.OutOfOrder) != 1 || r.Open != 1 {
		t.Fatalf("Check = %v; want 3 sections (1 open), 1 overlap, 1 token out of order", r)
	}
}
