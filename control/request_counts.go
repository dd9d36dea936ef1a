package control

import (
	"encoding/json"
	"strconv"
)

// CountsOr returns the optional property key, an object of whole numbers
// 0 or more by name (the logs command's cursor, a line number per
// watcher); nil when absent. Another shape is errno 3 "message invalid
// 'key' must be an object of counts".
func (r Request) CountsOr(key string) (map[string]uint64, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if v[0] != '{' || json.Unmarshal(v, &raw) != nil {
		return nil, errType(key, "an object of counts")
	}
	counts := make(map[string]uint64, len(raw))
	for name, n := range raw {
		c, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			return nil, errType(key, "an object of counts")
		}
		counts[name] = c
	}
	return counts, nil
}
