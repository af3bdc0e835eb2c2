package rediscache

import "strings"

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// slot is the Cluster hash slot of key: CRC16 (XMODEM) of the key, or of its hash tag
// (the part between the first "{" and the next "}", when that part is not empty), mod
// 16384. It is the algorithm of the Cluster specification.
func slot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return int(crc16(key) % slotCount)
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16tab[byte(crc>>8)^s[i]]
	}
	return crc
}

var crc16tab = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
