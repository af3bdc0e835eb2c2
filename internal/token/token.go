// Package token makes and recognizes the tokens that name a holder: an owner label, "#",
// and 128 random bits as 26 base32 characters (A-Z, 2-7).
package token

import (
	"crypto/rand"
	"strings"
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// New returns "<owner>#<26 random base32 characters>", in one allocation.
func New(owner string) string {
	var src [26]byte
	_, _ = rand.Read(src[:]) // never fails (crypto/rand's contract)
	var b strings.Builder
	b.Grow(len(owner) + 1 + len(src))
	b.WriteString(owner)
	b.WriteByte('#')
	for _, c := range src {
		b.WriteByte(alphabet[c&31])
	}
	return b.String()
}

// Is reports whether s ends in "#" and 26 base32 characters, as New makes them.
func Is(s string) bool {
	i := strings.LastIndexByte(s, '#')
	if i < 0 || len(s)-i-1 != 26 {
		return false
	}
	for _, r := range s[i+1:] {
		if !strings.ContainsRune(alphabet, r) {
			return false
		}
	}
	return true
}
