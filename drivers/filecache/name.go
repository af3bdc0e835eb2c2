package filecache

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// File names.
//
// A key becomes a file name by an escaping that is injective and whose output uses only
// the bytes [a-z0-9._%^~-]:
//
//   - a-z, 0-9, '-', '_' and '.' stand for themselves, except a '.' in the first position;
//   - an upper-case letter A-Z is '^' and its lower-case letter ("User" is "^user");
//   - every other byte (a first '.', '/', '\\', NUL, '%', '^', '~', space, each byte of a
//     multi-byte UTF-8 character, invalid UTF-8) is '%' and two lower-case hex digits.
//
// So a name never holds a path separator or NUL, is never "." or "..", never starts with
// a '.' (the names of the driver's own files, which Flush and the sweep leave alone), and
// is the same on a case-insensitive or normalising file system (only lower-case ASCII).
// Decoding is unambiguous, so two keys never share a name.
//
// Escaping can triple a key's length. A name longer than maxDirect bytes is cut at
// hashedCut bytes (never inside an escape) and followed by '~' and the hex SHA-256 of
// the whole key: at most hashedCut+1+64 = 225 bytes, under the 255-byte limit of ext4,
// xfs, btrfs and tmpfs. A direct name never holds '~' ('~' is escaped), so a hashed name
// never equals a direct one. Every file also stores its full key, checked on every read,
// so even a SHA-256 collision could never return another key's value.
const (
	maxDirect = 200
	hashedCut = 160
	hashMark  = '~'
)

const hexDigits = "0123456789abcdef"

// plain reports whether b stands for itself in a name, at any position but the first
// for '.'.
func plain(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.'
}

// escape returns the escaped form of key, with no length limit.
func escape(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		switch b := key[i]; {
		case plain(b) && !(i == 0 && b == '.'):
			n++
		case 'A' <= b && b <= 'Z':
			n += 2
		default:
			n += 3
		}
	}
	if n == len(key) {
		return key
	}
	var sb strings.Builder
	sb.Grow(n)
	for i := 0; i < len(key); i++ {
		switch b := key[i]; {
		case plain(b) && !(i == 0 && b == '.'):
			sb.WriteByte(b)
		case 'A' <= b && b <= 'Z':
			sb.WriteByte('^')
			sb.WriteByte(b + ('a' - 'A'))
		default:
			sb.WriteByte('%')
			sb.WriteByte(hexDigits[b>>4])
			sb.WriteByte(hexDigits[b&15])
		}
	}
	return sb.String()
}

// fileName returns the name of key's file in the cache directory.
func fileName(key string) string {
	e := escape(key)
	if len(e) <= maxDirect {
		return e
	}
	cut := hashedCut
	// Never cut inside "^x" or "%xx": the readable part stays a prefix of the escape
	// that decodes on its own.
	switch {
	case e[cut-1] == '^' || e[cut-1] == '%':
		cut--
	case e[cut-2] == '%':
		cut -= 2
	}
	sum := sha256.Sum256([]byte(key))
	return e[:cut] + string(hashMark) + hex.EncodeToString(sum[:])
}

// unescape decodes an escaped name. ok is false when s is not the escape of any key:
// then it is not one of the driver's files.
func unescape(s string) (key string, ok bool) {
	if s == "" {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case plain(b) && !(i == 0 && b == '.'):
			sb.WriteByte(b)
		case b == '^':
			if i+1 >= len(s) || s[i+1] < 'a' || s[i+1] > 'z' {
				return "", false
			}
			sb.WriteByte(s[i+1] - ('a' - 'A'))
			i++
		case b == '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			c := byte(hi<<4 | lo)
			// Only the canonical escape: a byte that stands for itself, or an upper-case
			// letter, escaped with '%' is not a name the driver writes.
			if (plain(c) && !(i == 0 && c == '.')) || ('A' <= c && c <= 'Z') {
				return "", false
			}
			sb.WriteByte(c)
			i += 2
		default:
			return "", false
		}
	}
	return sb.String(), true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// parsedName is what a directory entry's name says about the key it holds.
type parsedName struct {
	// key is the whole key for a direct name, the readable start of it for a hashed one.
	key    string
	hashed bool
}

// parseName reports whether name is one of the driver's entry files and what it says
// about its key. Temporary files, lock files and anything else the driver did not
// write are not entries.
func parseName(name string) (parsedName, bool) {
	if len(name) > maxDirect {
		// hashed: escape(key)[:cut] + "~" + 64 hex digits
		i := len(name) - 65
		if i < hashedCut-2 || i > hashedCut || name[i] != hashMark {
			return parsedName{}, false
		}
		for _, c := range []byte(name[i+1:]) {
			if unhex(c) < 0 {
				return parsedName{}, false
			}
		}
		k, ok := unescape(name[:i])
		return parsedName{key: k, hashed: true}, ok
	}
	k, ok := unescape(name)
	if !ok || escape(k) != name {
		return parsedName{}, false
	}
	return parsedName{key: k}, true
}

// mayBeUnder reports whether a file with this parsed name can hold ns or a key under
// "ns.". For a direct name the answer is exact; for a hashed one only the readable start
// of the key is known, and the stored key decides.
func (p parsedName) mayBeUnder(ns string) bool {
	if !p.hashed {
		return inNamespace(p.key, ns)
	}
	n := min(len(p.key), len(ns))
	return p.key[:n] == ns[:n]
}

// inNamespace reports whether key is ns or under "ns.".
func inNamespace(key, ns string) bool {
	return key == ns || len(key) > len(ns) && key[len(ns)] == '.' && key[:len(ns)] == ns
}
