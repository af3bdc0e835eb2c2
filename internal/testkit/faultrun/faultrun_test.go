package faultrun

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenerPID finds this process by a socket it listens on.
func TestListenerPID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := ListenerPID(ln.Addr().String())
	if err != nil || pid != os.Getpid() {
		t.Fatalf("ListenerPID = %d, %v; want %d", pid, err, os.Getpid())
	}
}

// TestReadLines: what a File writes, ReadLines reads back; a last line cut short is
// ignored, a bad line before another is an error, and ReadFiles leaves out a missing
// file.
func TestReadLines(t *testing.T) {
	type line struct {
		N int `json:"n"`
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "a.jsonl")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteJSON(line{N: 1})
	f.WriteLine([]byte(`{"n":2}`))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	torn, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = torn.WriteString(`{"n":3`) // killed mid-write
	torn.Close()
	read := func(path string) ([]int, error) {
		return ReadFile(path, func(rd io.Reader) ([]int, error) {
			var ns []int
			err := ReadLines(rd, func(_ int, l line, _ string) error {
				ns = append(ns, l.N)
				return nil
			})
			return ns, err
		})
	}
	got, err := ReadFiles([]string{path, filepath.Join(dir, "missing.jsonl")}, read)
	if err != nil || len(got) != 1 || len(got[0]) != 2 || got[0][0] != 1 || got[0][1] != 2 {
		t.Fatalf("ReadFiles = %v, %v; want [[1 2]]", got, err)
	}
	err = ReadLines(strings.NewReader("{\"n\":1}\nnonsense\n{\"n\":2}\n"), func(int, line, string) error { return nil })
	if err == nil {
		t.Fatal("ReadLines accepted a bad line in the middle")
	}
}
