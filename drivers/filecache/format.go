package filecache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The entry file format, version 1. All integers are big-endian.
//
//	offset  size  field
//	0       4     magic "CKF1"
//	4       8     expiry, Unix nanoseconds (int64); 0: never expires
//	12      4     key length K (uint32)
//	16      8     value length V (uint64)
//	24      K     the key
//	24+K    V     the value: the codec's bytes
//	24+K+V  4     CRC-32C (Castagnoli) of every byte before it
//
// A file whose size is not exactly 28+K+V, whose magic is wrong, or whose checksum does
// not match is corrupt: it reads as a miss and is reported to Options.OnError.
const (
	magic      = "CKF1"
	headerSize = 24
	crcSize    = 4
	maxKeyLen  = math.MaxUint32
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt matches, with errors.Is, the error reported to Options.OnError for a file
// that is not a well-formed entry: truncated, half-written by a crash before a rename
// reached the disk, or damaged. The driver treats such a file as a miss, overwrites it
// on the next write of its key, and the sweep removes it.
var ErrCorrupt = errors.New("filecache: corrupt entry file")

// entry is a decoded file.
type entry struct {
	expires int64 // Unix nanoseconds; 0: never
	key     string
	val     []byte
}

// live reports whether the entry has not expired at now (Unix nanoseconds).
func (e *entry) live(now int64) bool { return e.expires == 0 || now < e.expires }

// encodeEntry returns the file contents for key, val and expires.
func encodeEntry(key string, val []byte, expires int64) []byte {
	n := headerSize + len(key) + len(val) + crcSize
	b := make([]byte, headerSize, n)
	copy(b, magic)
	binary.BigEndian.PutUint64(b[4:], uint64(expires))
	binary.BigEndian.PutUint32(b[12:], uint32(len(key)))
	binary.BigEndian.PutUint64(b[16:], uint64(len(val)))
	b = append(b, key...)
	b = append(b, val...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeEntry parses a whole file. The returned value aliases b.
func decodeEntry(b []byte) (entry, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return entry{}, err
	}
	if uint64(len(b)) != headerSize+uint64(h.keyLen)+h.valLen+crcSize {
		return entry{}, fmt.Errorf("%w: %d bytes, the header says %d", ErrCorrupt, len(b), headerSize+uint64(h.keyLen)+h.valLen+crcSize)
	}
	end := len(b) - crcSize
	if got, want := crc32.Checksum(b[:end], crcTable), binary.BigEndian.Uint32(b[end:]); got != want {
		return entry{}, fmt.Errorf("%w: checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	k := headerSize + int(h.keyLen)
	return entry{expires: h.expires, key: string(b[headerSize:k]), val: b[k:end:end]}, nil
}

type header struct {
	expires int64
	keyLen  uint32
	valLen  uint64
}

// decodeHeader parses the fixed header at the start of b.
func decodeHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(b), headerSize)
	}
	if string(b[:4]) != magic {
		return header{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:4])
	}
	h := header{
		expires: int64(binary.BigEndian.Uint64(b[4:])),
		keyLen:  binary.BigEndian.Uint32(b[12:]),
		valLen:  binary.BigEndian.Uint64(b[16:]),
	}
	if h.expires < 0 || h.valLen > math.MaxInt64/2 {
		return header{}, fmt.Errorf("%w: impossible header", ErrCorrupt)
	}
	return h, nil
}
