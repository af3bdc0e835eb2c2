package cache

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// ParseDuration reads the duration strings people write in config files:
//
//	"30s", "5m", "1h", "1d", "1w", "1.5h", "2 weeks", "500ms"  a number and a unit
//	"1h30m", "2h45m10s"                                      Go's time.ParseDuration
//	"90"                                                     a bare number: seconds
//
// Units are ms, s, m, h, d (24h), w (7d), and their long forms (sec, secs, second,
// seconds, min, minute, hour, hr, day, week, ...), case-insensitive. Years and months are
// not accepted: their length is ambiguous. Negative, empty, unknown units, and results
// that overflow are errors.
func ParseDuration(s string) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("cache: invalid duration %q: empty", in)
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("cache: invalid duration %q: negative", in)
	}
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 { // a bare number: seconds
		return scale(in, s, time.Second)
	}
	if i == 0 {
		return 0, fmt.Errorf("cache: invalid duration %q: no number", in)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimLeftFunc(s[i:], unicode.IsSpace))
	if u, ok := durationUnits[unit]; ok {
		return scale(in, num, u)
	}
	// Go's compound form, "1h30m". It rejects what it does not know.
	if d, err := time.ParseDuration(strings.ToLower(s)); err == nil && !strings.ContainsFunc(s, unicode.IsSpace) {
		return d, nil
	}
	return 0, fmt.Errorf("cache: invalid duration %q: unknown unit %q", in, unit)
}

func scale(in, num string, unit time.Duration) (time.Duration, error) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("cache: invalid duration %q: bad number %q", in, num)
	}
	d := f * float64(unit)
	if d >= math.MaxInt64 {
		return 0, fmt.Errorf("cache: invalid duration %q: too large", in)
	}
	return time.Duration(math.Round(d)), nil
}
