package strftime

import (
	"testing"
	"time"
)

// The expected strings below were produced by CPython 3.11's
// datetime.strftime on glibc in the C locale, with an aware datetime so
// that %z and %Z are filled in.

// every is every directive Compile accepts, in one format.
const every = "%a|%A|%b|%B|%c|%d|%f|%H|%I|%j|%m|%M|%p|%S|%U|%w|%W|%x|%X|%y|%Y|%z|%Z|%%|" +
	"%e|%F|%T|%D|%R|%s|%u|%V|%G|%g|%h|%C|%k|%l|%P"

func TestAppendEveryDirective(t *testing.T) {
	t.Parallel()
	f, err := Compile(every)
	if err != nil {
		t.Fatalf("Compile(every) = %v", err)
	}
	for _, tc := range []struct {
		name string
		t    time.Time
		want string
	}{
		{"a Monday in November", time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC), "Mon|Monday|Nov|November|Mon Nov 23 10:00:00 2026|23|123456|10|10|327|11|00|AM|00|47|1|47|11/23/26|10:00:00|26|2026|+0000|UTC|%|23|2026-11-23|10:00:00|11/23/26|10:00|1795428000|1|48|2026|26|Nov|20|10|10|am"},
		{"new year on a Thursday", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "Thu|Thursday|Jan|January|Thu Jan  1 00:00:00 2026|01|000000|00|12|001|01|00|AM|00|00|4|00|01/01/26|00:00:00|26|2026|+0000|UTC|%| 1|2026-01-01|00:00:00|01/01/26|00:00|1767225600|4|01|2026|26|Jan|20| 0|12|am"},
		{"last second of 2025", time.Date(2025, 12, 31, 23, 59, 59, 999999000, time.UTC), "Wed|Wednesday|Dec|December|Wed Dec 31 23:59:59 2025|31|999999|23|11|365|12|59|PM|59|52|3|52|12/31/25|23:59:59|25|2025|+0000|UTC|%|31|2025-12-31|23:59:59|12/31/25|23:59|1767225599|3|01|2026|26|Dec|20|23|11|pm"},
		{"new year on a Sunday at noon", time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC), "Sun|Sunday|Jan|January|Sun Jan  1 12:00:00 2023|01|000000|12|12|001|01|00|PM|00|01|0|00|01/01/23|12:00:00|23|2023|+0000|UTC|%| 1|2023-01-01|12:00:00|01/01/23|12:00|1672574400|7|52|2022|22|Jan|20|12|12|pm"},
		{"last day of a leap year", time.Date(2024, 12, 31, 13, 5, 9, 7000, time.UTC), "Tue|Tuesday|Dec|December|Tue Dec 31 13:05:09 2024|31|000007|13|01|366|12|05|PM|09|52|2|53|12/31/24|13:05:09|24|2024|+0000|UTC|%|31|2024-12-31|13:05:09|12/31/24|13:05|1735650309|2|01|2025|25|Dec|20|13| 1|pm"},
		{"new year in ISO week 53", time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC), "Fri|Friday|Jan|January|Fri Jan  1 00:30:00 2027|01|000000|00|12|001|01|30|AM|00|00|5|00|01/01/27|00:30:00|27|2027|+0000|UTC|%| 1|2027-01-01|00:30:00|01/01/27|00:30|1798763400|5|53|2026|26|Jan|20| 0|12|am"},
		{"first Sunday of 2021", time.Date(2021, 1, 3, 9, 7, 3, 0, time.UTC), "Sun|Sunday|Jan|January|Sun Jan  3 09:07:03 2021|03|000000|09|09|003|01|07|AM|03|01|0|00|01/03/21|09:07:03|21|2021|+0000|UTC|%| 3|2021-01-03|09:07:03|01/03/21|09:07|1609664823|7|53|2020|20|Jan|20| 9| 9|am"},
		{"leap day", time.Date(2024, 2, 29, 23, 0, 0, 0, time.UTC), "Thu|Thursday|Feb|February|Thu Feb 29 23:00:00 2024|29|000000|23|11|060|02|00|PM|00|08|4|09|02/29/24|23:00:00|24|2024|+0000|UTC|%|29|2024-02-29|23:00:00|02/29/24|23:00|1709247600|4|09|2024|24|Feb|20|23|11|pm"},
		{"new year on a Monday", time.Date(2018, 1, 1, 11, 59, 59, 0, time.UTC), "Mon|Monday|Jan|January|Mon Jan  1 11:59:59 2018|01|000000|11|11|001|01|59|AM|59|00|1|01|01/01/18|11:59:59|18|2018|+0000|UTC|%| 1|2018-01-01|11:59:59|01/01/18|11:59|1514807999|1|01|2018|18|Jan|20|11|11|am"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(f.Append(nil, tc.t)); got != tc.want {
				t.Errorf("Append(%v) =\n%q, want\n%q", tc.t, got, tc.want)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	t.Parallel()
	ist := time.FixedZone("IST", 5*3600+30*60)
	nst := time.FixedZone("NST", -(3*3600 + 30*60))
	for _, tc := range []struct {
		name, format string
		t            time.Time
		want         string
	}{
		{"Circus's usual prefix", "%Y-%m-%d %H:%M:%S", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), "2026-11-23 10:00:00"},
		{"midnight is 12 AM", "%I %p %l %P", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "12 AM 12 am"},
		{"noon is 12 PM", "%I %p %l %P", time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "12 PM 12 pm"},
		{"one past noon", "%I %p %l %P", time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC), "01 PM  1 pm"},
		{"Sunday weeks before the first Sunday", "%U %W %j", time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), "00 00 001"},
		{"first Sunday starts week 1 of %U", "%U %W %j", time.Date(2022, 1, 2, 0, 0, 0, 0, time.UTC), "01 00 002"},
		{"first Monday starts week 1 of %W", "%U %W %j", time.Date(2022, 1, 3, 0, 0, 0, 0, time.UTC), "01 01 003"},
		{"end of a year that ends on a Saturday", "%U %W %j", time.Date(2022, 12, 31, 0, 0, 0, 0, time.UTC), "52 52 365"},
		{"east of UTC", "%z %Z %H", time.Date(2026, 11, 23, 10, 0, 0, 0, ist), "+0530 IST 10"},
		{"west of UTC", "%z %Z %H", time.Date(2026, 11, 23, 10, 0, 0, 0, nst), "-0330 NST 10"},
		{"literals", "a%nb%tc%%d é", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), "a\nb\tc%d é"},
		{"empty", "", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile(tc.format)
			if err != nil {
				t.Fatalf("Compile(%q) = %v", tc.format, err)
			}
			if got := string(f.Append([]byte("> "), tc.t)); got != "> "+tc.want {
				t.Errorf("Append(%q, %v) = %q, want %q", tc.format, tc.t, got, "> "+tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, format, want string
	}{
		{"unknown", "%Y %Q", "%Q: unknown strftime directive"},
		{"glibc flag", "%-d", "%-: unknown strftime directive"},
		{"glibc modifier", "%Ey", "%E: unknown strftime directive"},
		{"non-ASCII", "%é", "%é: unknown strftime directive"},
		{"lone percent at the end", "%H:%M %", "%: strftime directive cut short at the end of the format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile(tc.format)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Compile(%q) = %v, %v, want error %q", tc.format, f, err, tc.want)
			}
		})
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	f, err := Compile(every)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { buf = f.Append(buf[:0], now) }); n != 0 {
		t.Errorf("Append allocates %v times per call, want 0", n)
	}
}

func BenchmarkAppend(b *testing.B) {
	f, err := Compile("%Y-%m-%d %H:%M:%S")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], now)
	}
}
