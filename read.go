package cache

import (
	"context"
	"reflect"

	"github.com/cachekit/cache/internal/conv"
)

// readResult is what a read found: the value v, if found; near when v came from the near
// tier ([driver.Near]), already decoded; a ticket other than 0 asks for the value read
// from the store to be kept there once decoded ([namedDriver.decodeRead]).
type readResult struct {
	v      any
	found  bool
	near   bool
	ticket uint64
	k      string // the final key; "" when an inproc.JoinGetter was handed its two parts
}

// read is the driver's Get of the final key k, through its near tier when it has one.
func (d *namedDriver) read(ctx context.Context, k string) (readResult, error) {
	r := readResult{k: k}
	if d.near != nil {
		if v, ok := d.near.NearGet(k); ok {
			r.v, r.found, r.near = v, true, true
			return r, nil
		}
		r.ticket = d.near.NearReserve(k)
	}
	var err error
	r.v, r.found, err = d.d.Get(ctx, k)
	return r, err
}

// readAt is read of key under scope (its prefix and namespace, see keyScope): an
// inproc.JoinGetter, or a driver.Near for its near tier, is handed the two
// parts, so that a hit builds no joined key (k is then ""); otherwise the key is
// joined. A hit of the near tier is counted in the driver's metrics.
func (d *namedDriver) readAt(ctx context.Context, scope, key string) (readResult, error) {
	if scope != "" {
		if d.jget != nil {
			v, found, err := d.jget.GetJoined(ctx, scope, key)
			return readResult{v: v, found: found}, err
		}
		if d.near != nil {
			if v, ok := d.near.NearGetJoined(scope, key); ok {
				d.nearHit()
				return readResult{v: v, found: true, near: true}, nil
			}
		}
	}
	r, err := d.read(ctx, join(scope, key))
	if r.near {
		d.nearHit()
	}
	return r, err
}

// decodeRead decodes what read returned into dst, and keeps the decoded value in the
// near tier under its ticket.
func (d *namedDriver) decodeRead(r readResult, dst any) error {
	if r.near {
		return conv.Assign(dst, r.v)
	}
	decoded, err := d.decodeKeep(r.v, dst)
	if err != nil {
		return err
	}
	if r.ticket != 0 && decoded != nil {
		d.near.NearFill(r.k, reflect.ValueOf(decoded).Elem().Interface(), r.ticket)
	}
	return nil
}

// decodeT is decodeRead into a new T.
func decodeT[T any](d *namedDriver, r readResult) (T, error) {
	var t T
	if r.near {
		return t, conv.Assign(&t, r.v)
	}
	if err := d.decode(r.v, &t); err != nil {
		return t, err
	}
	if r.ticket != 0 {
		d.near.NearFill(r.k, t, r.ticket)
	}
	return t, nil
}

// valueAs is the value a read found, as a T: on an in-process driver a value stored as
// a T costs a type assertion; anything else is decoded (decodeT, apart so that its &t
// does not send the fast path's result to the heap).
func valueAs[T any](d *namedDriver, r readResult) (T, error) {
	if t, ok := r.v.(T); ok && (d.codec == nil || r.near) {
		return t, nil
	}
	return decodeT[T](d, r)
}
