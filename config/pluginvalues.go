package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// float reads a number as Python's float() does; it reports whether the
// key was set to one.
func (f *fields) float(key string, dst *float64) bool {
	v, ok := f.get(key)
	if !ok {
		return false
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		f.errorf(key, "%q is not a number", v)
		return false
	}
	*dst = n
	return true
}

// period reads a loop_rate or a timeout: seconds, more than 0 (Circus's
// periodic callback refuses 0 too).
func (f *fields) period(key string, dst *time.Duration) {
	v, ok := f.get(key)
	if !ok {
		return
	}
	d, err := parseSeconds(v)
	switch {
	case err != nil:
		f.errorf(key, "%v", err)
	case d <= 0:
		f.errorf(key, "%q: must be more than 0 seconds", v)
	default:
		*dst = d
	}
}

// bound reads a threshold: a percent, or with memory a size such as 250M
// (Circus's human2bytes). A max of 0 turns the bound off, as Circus's
// max_cpu = 0 does (Circus would restart at every sample for max_mem = 0).
func (f *fields) bound(key string, dst *Bound, memory bool) {
	v, ok := f.get(key)
	if !ok {
		return
	}
	s := strings.TrimSpace(v)
	n, err := strconv.ParseFloat(s, 64)
	switch {
	case err == nil && (math.IsNaN(n) || math.IsInf(n, 0) || n < 0):
		f.errorf(key, "%q is not a percent (0 or more)", v)
	case err == nil && n == 0 && strings.HasPrefix(key, "max_"):
		*dst = Bound{}
	case err == nil:
		*dst = Bound{Set: true, Value: n}
	case !memory:
		f.errorf(key, "%q is not a percent", v)
	default:
		b, err := HumanBytes(s)
		if err != nil {
			f.errorf(key, "%q is neither a percent of memory nor a size such as 250M", v)
			return
		}
		*dst = Bound{Set: true, Value: float64(b), Bytes: true}
	}
}

// Circus's human2bytes symbols: each set counts powers of 1024 from its
// first symbol.
var humanSymbols = [][]string{
	{"B", "K", "M", "G", "T", "P", "E", "Z", "Y"},
	{"byte", "kilo", "mega", "giga", "tera", "peta", "exa", "zetta", "iotta"},
	{"Bi", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"},
	{"byte", "kibi", "mebi", "gibi", "tebi", "pebi", "exbi", "zebi", "yobi"},
}

// HumanBytes reads a size as Circus's human2bytes does: a number, then a
// symbol counting powers of 1024 (B, K or k, M, G, ... Y; Ki, Mi, ...; kilo,
// mega, ...; kibi, mebi, ...), case-sensitive, as in "250M" or "1.5 G". It
// is how Circus's stats write mem_info1 ("1.34M"), and how
// ResourceWatcher's max_mem reads an absolute size.
func HumanBytes(s string) (int64, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("can't interpret %q as a size", s)
	}
	sym := strings.TrimSpace(s[i:])
	if sym == "k" {
		sym = "K"
	}
	for _, set := range humanSymbols {
		if j := slices.Index(set, sym); j >= 0 {
			v := num * math.Exp2(float64(10*j))
			if v >= math.MaxInt64 {
				return 0, fmt.Errorf("%q is too large", s)
			}
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("can't interpret %q as a size", s)
}

// MatchRegexp compiles a Python regular expression used with re.match:
// anchored at the start only.
func MatchRegexp(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)`)
	if err != nil {
		// The message of the unwrapped expression, which the user wrote.
		if _, err2 := regexp.Compile(expr); err2 != nil {
			return nil, err2
		}
		return nil, err
	}
	return re, nil
}

// RedisAddr is where a RedisObserver connects, read from its redis_url.
type RedisAddr struct {
	Network  string // tcp or unix
	Address  string // host:port, or the socket's path
	Username string
	Password string
}

// ParseRedisURL reads a redis_url as redis-py's from_url does:
// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or
// unix://[[USER]:PASSWORD@]/PATH. The database number does not matter to
// INFO and is not used. TLS (rediss://) is not supported.
func ParseRedisURL(s string) (RedisAddr, error) {
	u, err := url.Parse(s)
	if err != nil {
		return RedisAddr{}, fmt.Errorf("%q is not a URL", s)
	}
	var a RedisAddr
	if u.User != nil {
		a.Username = u.User.Username()
		a.Password, _ = u.User.Password()
	}
	switch u.Scheme {
	case "redis":
		if u.Hostname() == "" {
			return RedisAddr{}, fmt.Errorf("%q has no host", s)
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return RedisAddr{}, fmt.Errorf("%q: port %s is not a port number", s, port)
		}
		a.Network, a.Address = "tcp", net.JoinHostPort(u.Hostname(), port)
	case "unix":
		if u.Path == "" {
			return RedisAddr{}, fmt.Errorf("%q has no socket path", s)
		}
		a.Network, a.Address = "unix", u.Path
	case "rediss":
		return RedisAddr{}, fmt.Errorf("%q: TLS (rediss://) is not supported; use redis:// or unix://", s)
	default:
		return RedisAddr{}, fmt.Errorf("%q: want redis://HOST:PORT/DB or unix:///PATH", s)
	}
	return a, nil
}
