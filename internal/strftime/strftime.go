// Package strftime formats times with the strftime directives that Circus
// users write in stdout_stream.time_format: those of Python's
// datetime.strftime on glibc in the C locale.
//
// A format is parsed once by [Compile]; [Format.Append] then formats a time
// without allocating, so that it can stamp every batch of a worker's output.
// The directives are the C89 set that Python documents (%a %A %b %B %c %d
// %f %H %I %j %m %M %p %S %U %w %W %x %X %y %Y %z %Z %%) and the glibc ones
// that are common in the wild (%C %D %e %F %g %G %h %k %l %n %P %R %s %t %T
// %u %V). Anything else, including glibc's flags such as %-d and the %E and
// %O modifiers, is refused at compile time rather than passed through. %Y
// and %G pad years before 1000 to four digits, as Python 3.13 does on Linux.
package strftime

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Format is a compiled strftime format. It is immutable, so one Format may
// be used by any number of goroutines.
type Format struct {
	ops []op
	// iso is set when a directive needs the ISO week, which costs more
	// than the other fields and is rarely asked for.
	iso bool
}

// op is one step of a format: a literal when verb is 0, else a directive
// whose composite forms (%c, %D, %F, %R, %T, %x, %X, %h) were expanded at
// compile time.
type op struct {
	verb byte
	lit  string
}

// expansions are the composite directives, spelled as glibc's C locale
// defines them.
var expansions = map[byte]string{
	'c': "%a %b %e %H:%M:%S %Y",
	'D': "%m/%d/%y",
	'x': "%m/%d/%y",
	'F': "%Y-%m-%d",
	'R': "%H:%M",
	'T': "%H:%M:%S",
	'X': "%H:%M:%S",
	'h': "%b",
}

// literals are the directives that stand for a fixed string.
var literals = map[byte]string{'%': "%", 'n': "\n", 't': "\t"}

// Compile parses format. The error names the first directive it does not
// know, as in "%Q: unknown strftime directive", or a '%' that ends the
// format.
func Compile(format string) (*Format, error) {
	f := &Format{}
	if err := f.compile(format); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Format) compile(format string) error {
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			f.literal(format[i : i+1])
			continue
		}
		i++
		if i == len(format) {
			return errors.New("%: strftime directive cut short at the end of the format")
		}
		c = format[i]
		if s, ok := literals[c]; ok {
			f.literal(s)
			continue
		}
		if s, ok := expansions[c]; ok {
			if err := f.compile(s); err != nil {
				panic("BUG: bad expansion of %" + string(c) + ": " + err.Error())
			}
			continue
		}
		switch c {
		case 'a', 'A', 'b', 'B', 'C', 'd', 'e', 'f', 'H', 'I', 'j', 'k', 'l',
			'm', 'M', 'p', 'P', 's', 'S', 'u', 'U', 'w', 'W', 'y', 'Y', 'z', 'Z':
			f.ops = append(f.ops, op{verb: c})
		case 'G', 'g', 'V':
			f.ops = append(f.ops, op{verb: c})
			f.iso = true
		default:
			r, _ := utf8.DecodeRuneInString(format[i:])
			return fmt.Errorf("%%%c: unknown strftime directive", r)
		}
	}
	return nil
}

// literal adds s to the format, merged with a literal just before it so
// that Append copies runs of text in one go.
func (f *Format) literal(s string) {
	if n := len(f.ops); n > 0 && f.ops[n-1].verb == 0 {
		f.ops[n-1].lit += s
		return
	}
	f.ops = append(f.ops, op{lit: s})
}

var (
	longDays    = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	longMonths  = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	shortDays   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	shortMonths = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// Append appends t, formatted in its own location, to dst and returns the
// extended buffer. It does not allocate when dst has room.
func (f *Format) Append(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	wday := int(t.Weekday())
	yday := t.YearDay() - 1
	var isoYear, isoWeek int
	if f.iso {
		isoYear, isoWeek = t.ISOWeek()
	}
	for _, o := range f.ops {
		switch o.verb {
		case 0:
			dst = append(dst, o.lit...)
		case 'a':
			dst = append(dst, shortDays[wday]...)
		case 'A':
			dst = append(dst, longDays[wday]...)
		case 'b':
			dst = append(dst, shortMonths[month-1]...)
		case 'B':
			dst = append(dst, longMonths[month-1]...)
		case 'C':
			dst = appendInt(dst, floorDiv(year, 100), 2, '0')
		case 'd':
			dst = appendInt(dst, day, 2, '0')
		case 'e':
			dst = appendInt(dst, day, 2, ' ')
		case 'f':
			dst = appendInt(dst, t.Nanosecond()/1000, 6, '0')
		case 'G':
			dst = appendInt(dst, isoYear, 4, '0')
		case 'g':
			dst = appendInt(dst, mod(isoYear, 100), 2, '0')
		case 'H':
			dst = appendInt(dst, hour, 2, '0')
		case 'I':
			dst = appendInt(dst, hour12(hour), 2, '0')
		case 'j':
			dst = appendInt(dst, yday+1, 3, '0')
		case 'k':
			dst = appendInt(dst, hour, 2, ' ')
		case 'l':
			dst = appendInt(dst, hour12(hour), 2, ' ')
		case 'm':
			dst = appendInt(dst, int(month), 2, '0')
		case 'M':
			dst = appendInt(dst, minute, 2, '0')
		case 'p':
			dst = append(dst, ampm(hour, "AM", "PM")...)
		case 'P':
			dst = append(dst, ampm(hour, "am", "pm")...)
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'S':
			dst = appendInt(dst, sec, 2, '0')
		case 'u':
			dst = appendInt(dst, (wday+6)%7+1, 1, '0')
		case 'U':
			// Weeks start on Sunday; days before the first Sunday are
			// in week 0.
			dst = appendInt(dst, (yday+7-wday)/7, 2, '0')
		case 'V':
			dst = appendInt(dst, isoWeek, 2, '0')
		case 'w':
			dst = appendInt(dst, wday, 1, '0')
		case 'W':
			// As %U, with weeks starting on Monday.
			dst = appendInt(dst, (yday+7-(wday+6)%7)/7, 2, '0')
		case 'y':
			dst = appendInt(dst, mod(year, 100), 2, '0')
		case 'Y':
			dst = appendInt(dst, year, 4, '0')
		case 'z':
			dst = appendOffset(dst, t)
		case 'Z':
			name, _ := t.Zone()
			dst = append(dst, name...)
		default:
			panic("BUG: strftime op with verb " + string(o.verb))
		}
	}
	return dst
}

// appendInt appends v in decimal, padded on the left with pad to width.
func appendInt(dst []byte, v, width int, pad byte) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
		width--
	}
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	for len(buf)-i < width {
		i--
		buf[i] = pad
	}
	return append(dst, buf[i:]...)
}

// appendOffset appends t's offset from UTC as Python does: +HHMM, with
// seconds added only for the odd historical zone that has them.
func appendOffset(dst []byte, t time.Time) []byte {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign = '-'
		off = -off
	}
	dst = append(dst, sign)
	dst = appendInt(dst, off/3600, 2, '0')
	dst = appendInt(dst, off/60%60, 2, '0')
	if off%60 != 0 {
		dst = appendInt(dst, off%60, 2, '0')
	}
	return dst
}

func hour12(h int) int {
	if h%12 == 0 {
		return 12
	}
	return h % 12
}

func ampm(h int, am, pm string) string {
	if h < 12 {
		return am
	}
	return pm
}

// floorDiv and mod round toward minus infinity, so that years before 1
// still give a century and a two-digit year in range.
func floorDiv(a, b int) int {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func mod(a, b int) int { return ((a % b) + b) % b }
