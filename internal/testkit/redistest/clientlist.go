package redistest

import "strings"

// ParseClientList splits the reply of CLIENT LIST into one map of fields per
// connection ("id", "name", "flags", ...).
func ParseClientList(list string) []map[string]string {
	var cs []map[string]string
	for line := range strings.Lines(list) {
		f := make(map[string]string)
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if len(f) > 0 {
			cs = append(cs, f)
		}
	}
	return cs
}
