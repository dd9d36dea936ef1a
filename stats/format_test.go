package stats

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBytes2Human(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1023, "1023B"},
		{1024, "1.00K"},
		{1405091, "1.34M"},
		{2558525, "2.44M"},
		{1048575, "1024.00K"},
		{3 << 30, "3.00G"},
		{5 << 40, "5.00T"},
	}
	for _, tt := range tests {
		if got := bytes2human(tt.in); got != tt.want {
			t.Errorf("bytes2human(%d) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFormatCPUTime(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0:00.00"},
		{200 * time.Millisecond, "0:00.20"},
		{50 * time.Millisecond, "0:00.05"},
		{59*time.Second + 999*time.Millisecond, "0:59.99"},
		{61 * time.Second, "1:01.00"},
		{2*time.Hour + 3*time.Second, "120:03.00"},
	}
	for _, tt := range tests {
		if got := formatCPUTime(tt.in); got != tt.want {
			t.Errorf("formatCPUTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// circusExample is the info of reference §4.2, captured from Circus 0.19.
var circusExample = Info{
	Pid:        8627,
	RSS:        1405091,
	VMS:        2558525,
	CPU:        0,
	Mem:        0.006,
	CPUTime:    200 * time.Millisecond,
	Username:   "root",
	Nice:       0,
	CreateTime: 1795464648.28,
	Age:        17.04,
	Cmdline:    "sleep",
	Started:    time.Unix(1795464649, 256961600),
	Wid:        1,
}

func TestInfoMarshalJSON(t *testing.T) {
	const want = `{"mem_info1": "1.34M", "mem_info2": "2.44M", "cpu": 0.0, "mem": 0.006, "ctime": "0:00.20", "pid": 8627, "username": "root", "nice": 0, "create_time": 1795464648.28, "age": 17.04, "cmdline": "sleep", "children": [], "started": 1795464649.2569616, "wid": 1}`
	got, err := json.Marshal(circusExample)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json compacts a Marshaler's output; the method itself
	// writes Python's separators.
	raw, _ := circusExample.MarshalJSON()
	if string(raw) != want {
		t.Errorf("MarshalJSON() =\n%s\nwant\n%s", raw, want)
	}
	if !json.Valid(got) {
		t.Errorf("json.Marshal gave invalid JSON %s", got)
	}

	t.Run("children and N/A", func(t *testing.T) {
		in := Info{Pid: 1, Cmdline: "sh", Username: "u", Children: []Info{{Pid: 2, na: naMem | naCPU | naUser | naCmdline}}}
		const want = `{"mem_info1": "0B", "mem_info2": "0B", "cpu": 0.0, "mem": 0.0, "ctime": "0:00.00", "pid": 1, "username": "u", "nice": 0, "create_time": 0.0, "age": 0.0, "cmdline": "sh", "children": [` +
			`{"mem_info1": "N/A", "mem_info2": "N/A", "cpu": "N/A", "mem": "N/A", "ctime": "N/A", "pid": 2, "username": "N/A", "nice": "N/A", "create_time": "N/A", "age": "N/A", "cmdline": "N/A", "children": []}]}`
		got, _ := in.MarshalJSON()
		if string(got) != want {
			t.Errorf("MarshalJSON() =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestStreamJSON(t *testing.T) {
	in := circusExample
	in.Children = []Info{{Pid: 9}}
	const want = `{"mem_info1": "1.34M", "mem_info2": "2.44M", "cpu": 0.0, "mem": 0.006, "ctime": "0:00.20", "pid": 8627, "username": "root", "nice": 0, "create_time": 1795464648.28, "age": 17.04, "cmdline": "sleep", "children": [], "subtopic": 8627, "name": null}`
	if got := string(streamJSON(nil, &in, "")); got != want {
		t.Errorf("streamJSON() =\n%s\nwant\n%s", got, want)
	}
	if in.Children == nil || in.Started.IsZero() {
		t.Error("streamJSON modified its argument")
	}
}

func TestAggregateJSON(t *testing.T) {
	tests := []struct {
		name  string
		infos []Info
		want  string
	}{
		{"empty", nil, `{"pid": [], "cpu": 0.0, "mem": 0, "age": "N/A"}`},
		{"two", []Info{{Pid: 10, CPU: 50, Mem: 0.006, Age: 3.5}, {Pid: 11, CPU: 0.1, Mem: 0.006, Age: 7.25}},
			`{"pid": [10, 11], "cpu": 25.05, "mem": 0.012, "age": 7.25}`},
		{"float sum", []Info{{Pid: 1, Mem: 0.1}, {Pid: 2, Mem: 0.2}},
			`{"pid": [1, 2], "cpu": 0.0, "mem": 0.30000000000000004, "age": 0.0}`},
		{"n/a", []Info{{Pid: 1, na: naCPU | naMem}}, `{"pid": [1], "cpu": "N/A", "mem": "N/A", "age": "N/A"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(aggregateJSON(nil, tt.infos)); got != tt.want {
				t.Errorf("aggregateJSON() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
