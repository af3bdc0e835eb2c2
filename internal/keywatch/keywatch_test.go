package keywatch

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Notify wakes the waiters of its keys only; the hooks see each key's first and last
// waiter and the registry's first and last.
func TestNotifyAndHooks(t *testing.T) {
	var log []string
	r := &Registry{Hooks: Hooks{
		First:  func(k string) error { log = append(log, "first "+k); return nil },
		Last:   func(k string) { log = append(log, "last "+k) },
		Active: func(on bool) { log = append(log, map[bool]string{true: "on", false: "off"}[on]) },
	}}
	ctx := context.Background()
	a1, _ := r.Watch(ctx, "a")
	a2, _ := r.Watch(ctx, "a")
	b, _ := r.Watch(ctx, "b")
	r.Notify("a", "c")
	if !closed(a1) || !closed(a2) || closed(b) {
		t.Fatalf("after Notify(a): a1 %v a2 %v b %v; want a's closed, b open", closed(a1), closed(a2), closed(b))
	}
	r.NotifyIf(func(k string) bool { return k == "b" })
	if !closed(b) {
		t.Fatal("NotifyIf(b) left b's waiter open")
	}
	want := []string{"first a", "on", "first b", "last a", "last b", "off"}
	if !slices.Equal(log, want) {
		t.Fatalf("hooks: %q; want %q", log, want)
	}
}

// A waiter's ctx ending closes its channel and unregisters it; Close wakes the rest and
// refuses new waiters.
func TestCtxAndClose(t *testing.T) {
	r := &Registry{}
	ctx, cancel := context.WithCancel(context.Background())
	w, _ := r.Add(ctx, "k", nil)
	cancel()
	<-w.C()
	other, _ := r.Watch(context.Background(), "k")
	if !r.Close() || r.Close() {
		t.Fatal("Close: want true once, then false")
	}
	if !closed(other) {
		t.Fatal("Close left a waiter open")
	}
	if _, err := r.Watch(context.Background(), "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch after Close = %v; want ErrClosed", err)
	}
}

// With Hooks.Arm a key is armed by Arm only; a First that fails refuses the waiter.
func TestArmAndFirstError(t *testing.T) {
	boom := errors.New("subscribe failed")
	fail := true
	r := &Registry{Hooks: Hooks{Arm: true, First: func(string) error {
		if fail {
			return boom
		}
		return nil
	}}}
	if _, err := r.Add(context.Background(), "k", nil); !errors.Is(err, boom) {
		t.Fatalf("Add with a failing First = %v; want its error", err)
	}
	fail = false
	w, err := r.Add(context.Background(), "k", 7)
	if err != nil || closed(w.Armed()) || w.Data != 7 || w.Key() != "k" {
		t.Fatalf("Add: err %v, armed %v, data %v, key %q", err, closed(w.Armed()), w.Data, w.Key())
	}
	r.Arm("k")
	if !closed(w.Armed()) || closed(w.C()) {
		t.Fatal("Arm: want armed, not fired")
	}
	r.Fire(w)
	r.Fire(w) // a no-op
	if !closed(w.C()) {
		t.Fatal("Fire left the waiter open")
	}
}
