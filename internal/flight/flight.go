// Package flight runs a load once for every concurrent caller of the same key, on
// golang.org/x/sync/singleflight, with the rules a shared load needs: a caller whose ctx
// ends stops waiting; a load that failed because the ctx of the caller that started it
// ended is that caller's failure, not the others'; a panic goes to the caller that ran
// the load.
package flight

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/singleflight"
)

// Do runs load once for every concurrent caller of the same key in g, and gives each
// its result as a T (the zero T for a nil result or one of another type). A caller whose
// ctx ends stops waiting and gets ctx's cause. A load that failed after the ctx of the
// caller that started it ended is that caller's failure: a waiter whose own ctx is live
// runs it again. Any other error, whatever it wraps (a loader's own timeout wraps
// context.DeadlineExceeded), reaches every waiter once; a [Partial] error comes with the
// value, as its Err. A panic in load (see [Call]) panics again in the caller that ran
// it, and is a [*PanicError] for the others.
func Do[T any](ctx context.Context, g *singleflight.Group, key string, load func() (any, error)) (T, error) {
	var zero T
	for {
		var ran bool // set by the goroutine that runs the flight; read after <-ch
		ch := g.DoChan(key, func() (any, error) {
			ran = true
			v, err := load()
			if err != nil && ctx.Err() != nil { // ctx is the starter's: it ended
				var pe *PanicError
				var p *Partial
				if !errors.As(err, &pe) && !errors.As(err, &p) {
					err = &starterEnded{err}
				}
			}
			return v, err
		})
		var r singleflight.Result
		select {
		case r = <-ch:
		case <-ctx.Done():
			return zero, context.Cause(ctx)
		}
		val, _ := r.Val.(T) // a nil interface value does not assert
		var pe *PanicError
		var p *Partial
		var ended *starterEnded
		switch {
		case r.Err == nil:
			return val, nil
		case errors.As(r.Err, &pe):
			if ran {
				panic(pe.Value)
			}
		case errors.As(r.Err, &p):
			return val, p.Err
		case errors.As(r.Err, &ended):
			// Another caller's cancellation is not ours: run the load again.
			if !ran && ctx.Err() == nil {
				continue
			}
			return zero, ended.err
		}
		return zero, r.Err
	}
}

// Partial is the error of a load that made its value and then failed (to store it, say):
// [Do] returns the value with Err.
type Partial struct{ Err error }

func (e *Partial) Error() string { return "store: " + e.Err.Error() }
func (e *Partial) Unwrap() error { return e.Err }

// starterEnded marks a load that failed after the ctx of the caller that started it
// ended: the failure belongs to that caller, not to the others waiting for the load.
type starterEnded struct{ err error }

func (e *starterEnded) Error() string { return e.err.Error() }
func (e *starterEnded) Unwrap() error { return e.err }

// PanicError carries a loader's panic to the caller that started the load.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("loader panicked: %v", e.Value) }

// Call calls fn, and returns a panic in it as a [*PanicError].
func Call[T any](ctx context.Context, fn func(context.Context) (T, error)) (t T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{r}
		}
	}()
	return fn(ctx)
}
