package config

import (
	"math"
	"net/netip"
	"slices"
	"strings"
)

// circusKeys are the keys of [circus] that Circus 0.19 reads, plus those it
// documents but ignores (statsd_close_outputs, httpd_close_outputs,
// stream_backend), which are accepted so that its users' files load quietly.
var circusKeys = []string{
	"endpoint", "endpoint_owner", "pubsub_endpoint", "stats_endpoint", "statsd",
	"multicast_endpoint", "check_delay", "warmup_delay", "include", "include_dir",
	"umask", "httpd", "httpd_host", "httpd_port", "httpd_auth", "debug", "debug_gc", "pidfile",
	"loglevel", "logoutput", "loggerconfig", "fqdn_prefix",
	"statsd_close_outputs", "httpd_close_outputs", "stream_backend",
}

// ringmasterCircusKeys are [circus] keys of Ringmaster's own.
var ringmasterCircusKeys = append(slices.Clip(accessKeys), "logformat")

// readCircus reads the [circus] section into c.
func readCircus(f *fields, c *Circus) {
	known := map[string]bool{}
	all := append(slices.Clip(circusKeys), ringmasterCircusKeys...)
	for _, k := range all {
		known[k] = true
	}
	for _, k := range f.sec.keys {
		c.Options[k.name] = f.vals[k.name]
		if !known[k.name] {
			f.unknownKey(k.name, all)
		}
	}
	f.str("endpoint", &c.Endpoint)
	f.str("endpoint_owner", &c.EndpointOwner)
	f.str("pubsub_endpoint", &c.PubsubEndpoint)
	if _, ok := f.get("stats_endpoint"); ok {
		// Circus: setting stats_endpoint turns the stats streamer on.
		f.str("stats_endpoint", &c.StatsEndpoint)
		c.Statsd = true
	} else {
		f.boolean("statsd", &c.Statsd)
	}
	f.str("multicast_endpoint", &c.MulticastEndpoint)
	// Negative check_delay is kept: Circus's own tests use -1.
	f.seconds("check_delay", &c.CheckDelay, true)
	f.seconds("warmup_delay", &c.WarmupDelay, false)
	if v, ok := f.get("include"); ok {
		c.Include = strings.Fields(v)
	}
	if v, ok := f.get("include_dir"); ok {
		c.IncludeDir = strings.Fields(v)
	}
	f.umask("umask", &c.Umask)
	f.boolean("httpd", &c.Httpd)
	f.str("httpd_host", &c.HttpdHost)
	f.integer("httpd_port", &c.HttpdPort, 0, 65535)
	f.str("httpd_auth", &c.HttpdAuth)
	checkHttpd(f, c)
	f.readAccess(c)
	f.boolean("debug", &c.Debug)
	f.boolean("debug_gc", &c.DebugGC)
	f.str("pidfile", &c.Pidfile)
	f.str("loglevel", &c.LogLevel)
	f.str("logoutput", &c.LogOutput)
	if _, err := ParseLogOutput(c.LogOutput); err != nil {
		f.errorf("logoutput", "%v", err)
	}
	f.str("logformat", &c.LogFormat)
	if err := CheckLogFormat(c.LogFormat); err != nil {
		f.errorf("logformat", "%v", err)
	}
	f.str("loggerconfig", &c.LoggerConfig)
	f.str("fqdn_prefix", &c.FQDNPrefix)
	if _, ok := LogLevel(c.LogLevel); ok {
		c.LogLevel = strings.ToLower(c.LogLevel)
	} else {
		f.errorf("loglevel", "%q is not a log level (critical, error, warning, info, debug)", c.LogLevel)
	}
}

// maxInt bounds integer keys that have no natural upper limit.
const maxInt = math.MaxInt32

// checkHttpd refuses a console that anyone on the network could drive:
// bound beyond loopback, it needs httpd_auth. Circus's console had no
// authentication at all (reference §9).
func checkHttpd(f *fields, c *Circus) {
	if c.HttpdAuth != "" {
		user, pass, ok := strings.Cut(c.HttpdAuth, ":")
		if !ok || user == "" || pass == "" {
			f.errorf("httpd_auth", "want USER:PASSWORD, both non-empty")
		}
	}
	if c.Httpd && c.HttpdAuth == "" && !IsLoopbackHost(c.HttpdHost) {
		key := "httpd_host"
		if _, ok := f.get(key); !ok {
			key = "httpd"
		}
		f.errorf(key, "the console would listen on %q, beyond this machine, without authentication: set httpd_auth = USER:PASSWORD, or httpd_host = localhost", c.HttpdHost)
	}
}

// IsLoopbackHost reports whether host (a name or an IP literal, IPv6 with or
// without brackets) can only be reached from this machine: "localhost" and
// loopback addresses. Any other name could resolve to anything, and "" or
// "0.0.0.0" mean every interface.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
