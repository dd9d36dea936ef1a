package config

import "testing"

func TestReadyzMin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, keys string
		want       int
		warns      []string
	}{
		{"default: the whole target", "", -1, nil},
		{"fewer", "readyz_min = 2\n", 2, nil},
		{"never holds /readyz back", "readyz_min = 0\n", 0, nil},
		{"on a watcher that does not start", "autostart = false\nreadyz_min = 1\n", 1,
			[]string{"t.ini:4: [watcher:w] readyz_min: ignored: /readyz waits only for autostart watchers"}},
		{"a typo", "readyz_mni = 1\n", -1,
			[]string{"t.ini:3: [watcher:w] readyz_mni: unknown key, kept as a free-form option; did you mean readyz_min?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte("[watcher:w]\ncmd = sleep 1\n"+tt.keys))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := watcher(t, c, "w").ReadyzMin; got != tt.want {
				t.Errorf("ReadyzMin = %d, want %d", got, tt.want)
			}
			var warns []string
			for _, w := range c.Warnings {
				warns = append(warns, w.Error())
			}
			checkMessages(t, "Warnings", warns, tt.warns)
		})
	}
}

func TestProbeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ini string
		want      []string
	}{
		{"readyz_min not a number", "[watcher:w]\ncmd = x\nreadyz_min = all\n",
			[]string{`t.ini:3: [watcher:w] readyz_min: "all" is not a number of workers (0 or more)`}},
		{"readyz_min negative", "[watcher:w]\ncmd = x\nreadyz_min = -1\n",
			[]string{`t.ini:3: [watcher:w] readyz_min: "-1" is not a number of workers`}},
		{"metrics not a boolean", "[circus]\nmetrics = perhaps\n",
			[]string{`t.ini:2: [circus] metrics: "perhaps" is not a boolean`}},
		{"metrics_port out of range", "[circus]\nmetrics_port = 70000\n",
			[]string{"t.ini:2: [circus] metrics_port: 70000 is out of range 0..65535"}},
		{"beyond loopback without auth", "[circus]\nmetrics = true\nmetrics_host = 0.0.0.0\n",
			[]string{`t.ini:3: [circus] metrics_host: /metrics, /healthz and /readyz would listen on "0.0.0.0", beyond this machine, without authentication: set httpd_auth`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("t.ini", []byte(tt.ini))
			checkErrors(t, "Parse()", err, tt.want)
		})
	}
}

func TestMetricsKeys(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.ini", []byte("[circus]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Circus; got.Metrics || got.MetricsHost != "localhost" || got.MetricsPort != 5558 {
		t.Errorf("defaults: metrics %v on %s:%d, want false on localhost:5558", got.Metrics, got.MetricsHost, got.MetricsPort)
	}
	c, err = Parse("t.ini", []byte("[circus]\nmetrics = true\nmetrics_host = 0.0.0.0\nmetrics_port = 9000\nhttpd_auth = ops:secret\n"))
	if err != nil {
		t.Fatalf("Parse with httpd_auth: %v", err)
	}
	if got := c.Circus; !got.Metrics || got.MetricsHost != "0.0.0.0" || got.MetricsPort != 9000 || len(c.Warnings) != 0 {
		t.Errorf("metrics %v on %s:%d, warnings %v; want true on 0.0.0.0:9000, none", got.Metrics, got.MetricsHost, got.MetricsPort, c.Warnings)
	}
}
