package config

// closest returns the known key nearest to key by edit distance, if it is
// near enough to be a typo: at most 2 edits, and at most a third of the
// known key's length, so that short free-form keys are not taken for typos
// of short known ones.
func closest(key string, known []string) (string, bool) {
	best, bestD := "", -1
	for _, k := range known {
		d := editDistance(key, k)
		limit := min(2, len(k)/3)
		if d > 0 && d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = k, d
		}
	}
	return best, bestD > 0
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unknownKey warns about a key the section does not know, suggesting the
// closest known one.
func (f *fields) unknownKey(key string, known []string) {
	if s, ok := closest(key, known); ok {
		f.warnf(key, "unknown key; did you mean %s?", s)
		return
	}
	f.warnf(key, "unknown key, ignored")
}
