// Package suggest finds the known name nearest to a mistyped one, for the
// "did you mean" of every "unknown" and "not found" Ringmaster says: the
// config's keys and sections (arbiter --validate), and circusctl's
// commands, watchers, set keys and plugin classes, whether circusctl or
// the arbiter's command table finds the mistake. One function, so that
// both sides call the same names near.
package suggest

// Closest returns the known name nearest to word by edit distance, if it
// is near enough to be a typo: at most 2 edits, and at most a third of the
// known name's length, so that short free-form words are not taken for
// typos of short known ones. A word that is itself known has no
// suggestion.
func Closest(word string, known []string) (string, bool) {
	best, bestD := "", -1
	for _, k := range known {
		d := editDistance(word, k)
		limit := min(2, len(k)/3)
		if d > 0 && d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = k, d
		}
	}
	return best, bestD > 0
}

// Hint is "; did you mean NAME?" for the nearest known name (quoted with
// quote, as the message quotes word), or "" if none is near.
func Hint(word string, known []string, quote func(string) string) string {
	s, ok := Closest(word, known)
	if !ok {
		return ""
	}
	return "; did you mean " + quote(s) + "?"
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
