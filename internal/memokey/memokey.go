// Package memokey turns a function's argument into the text of a cache key, injectively:
// two different arguments never share a text.
package memokey

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

const (
	// MaxText is how many bytes of argument text are kept as they are.
	MaxText = 200
	// Mark starts a hashed text, and is doubled in front of a short text that starts
	// with it.
	Mark = "~"
)

// Of returns the key text of a: a itself for a string, the decimal text for an int,
// int64, uint64, bool or float64, and JSON for anything else, and for every argument
// with asJSON (so that 42 and "42" differ); then [Encode] with reserved. The error is
// JSON's, for an argument it cannot encode.
func Of(a any, asJSON bool, reserved string) (string, error) {
	s, ok := "", false
	if !asJSON {
		s, ok = text(a)
	}
	if !ok {
		b, err := json.Marshal(a)
		if err != nil {
			return "", err
		}
		s = string(b)
	}
	return Encode(s, reserved), nil
}

// text is the text of a string, number or boolean a; ok is false for other types.
func text(a any) (s string, ok bool) {
	switch v := a.(type) {
	case string:
		return v, true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// Encode is the key of an argument's text s: a text of at most MaxText bytes without
// reserved is itself, with Mark in front when it starts with Mark; any other text is
// Mark, "sha256:" and its hash in hex, a form that no short text takes (those start with
// a character other than Mark, or with Mark twice).
func Encode(s, reserved string) string {
	if len(s) <= MaxText && (reserved == "" || !strings.Contains(s, reserved)) {
		if strings.HasPrefix(s, Mark) {
			return Mark + s
		}
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return Mark + "sha256:" + hex.EncodeToString(sum[:])
}
