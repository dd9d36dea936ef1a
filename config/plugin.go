package config

import (
	"errors"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// The plugin classes Circus 0.19 ships, as a [plugin:NAME] section's use
// names them. Ringmaster has each of them built in (package plugins; the
// flapping limit in the arbiter); no other class can run, since Ringmaster
// runs no Python.
const (
	FlappingPlugin        = "circus.plugins.flapping.Flapping"
	WatchDogPlugin        = "circus.plugins.watchdog.WatchDog"
	ResourceWatcherPlugin = "circus.plugins.resource_watcher.ResourceWatcher"
	StatsdEmitterPlugin   = "circus.plugins.statsd.StatsdEmitter"
	FullStatsPlugin       = "circus.plugins.statsd.FullStats"
	HTTPObserverPlugin    = "circus.plugins.http_observer.HttpObserver"
	CommandReloaderPlugin = "circus.plugins.command_reloader.CommandReloader"
	RedisObserverPlugin   = "circus.plugins.redis_observer.RedisObserver"
)

// pluginClasses maps every name Circus accepts for its classes, including
// the module it keeps for backwards compatibility, to the class.
var pluginClasses = map[string]string{
	FlappingPlugin:                         FlappingPlugin,
	WatchDogPlugin:                         WatchDogPlugin,
	ResourceWatcherPlugin:                  ResourceWatcherPlugin,
	StatsdEmitterPlugin:                    StatsdEmitterPlugin,
	"circus.plugins._statsd.StatsdEmitter": StatsdEmitterPlugin,
	FullStatsPlugin:                        FullStatsPlugin,
	HTTPObserverPlugin:                     HTTPObserverPlugin,
	CommandReloaderPlugin:                  CommandReloaderPlugin,
	RedisObserverPlugin:                    RedisObserverPlugin,
}

// Class returns the built-in class p's use names, with Circus's aliases
// resolved: one of the *Plugin constants, or "" for any other class.
func (p *Plugin) Class() string { return pluginClasses[strings.TrimSpace(p.Use)] }

// PluginSpec is a built-in plugin's options, read and checked: one of
// *[WatchDog], *[ResourceWatcher], *[StatsdEmitter], *[FullStats],
// *[HTTPObserver], *[CommandReloader] or *[RedisObserver].
type PluginSpec interface{ pluginSpec() }

// Spec returns p's options read and checked exactly as [Load] read them.
// It returns nil and no error for a plugin that runs nothing: one with
// active = false, and Flapping, whose limit Load gave the watchers. Errors
// (for a Plugin that did not come from Load) are *[Error] values naming the
// section and key, joined.
func (p *Plugin) Spec() (PluginSpec, error) {
	sec := &rawSection{name: "plugin:" + p.Name, index: map[string]*rawKey{}}
	for _, k := range slices.Sorted(maps.Keys(p.Options)) {
		rk := &rawKey{name: k, value: p.Options[k]}
		sec.keys = append(sec.keys, rk)
		sec.index[k] = rk
	}
	d := &diag{}
	f := &fields{d: d, sec: sec, vals: p.Options}
	active := true
	f.boolean("active", &active)
	class := p.Class()
	switch {
	case !active || class == FlappingPlugin:
	case class == "":
		f.errorf("use", "%s is not a plugin Ringmaster has built in%s", strconv.Quote(p.Use),
			suggest.Hint(strings.TrimSpace(p.Use), builtinClasses(), strconv.Quote))
	default:
		spec := f.pluginSpec(class)
		if err := errors.Join(d.errs...); err != nil {
			return nil, err
		}
		return spec, nil
	}
	return nil, errors.Join(d.errs...)
}

// Statsd is where a plugin sends its statsd metrics: Circus's host, port,
// sample_rate and application_name options, shared by every plugin that
// sends any.
type Statsd struct {
	Host string // default localhost
	Port int    // default 8125
	// SampleRate, in (0, 1], is the share of counters and timings sent,
	// each tagged |@rate (default 1: all, untagged).
	SampleRate float64
	// ApplicationName names the metrics, circus.<name>.watcher.<metric>:
	// by default app, or the plugin's own name (http_observer,
	// redis_observer) for the observers, as in Circus.
	ApplicationName string
}

// Prefix is the start of every metric name: circus.<application_name>.watcher.
func (s Statsd) Prefix() string { return "circus." + s.ApplicationName + ".watcher" }

// WatchDog is a WatchDog plugin: workers send heartbeats over UDP, and one
// silent for more than LoopRate × MaxCount is stopped gracefully.
type WatchDog struct {
	// LoopRate is how often silent workers are looked for (default 60 s).
	LoopRate time.Duration
	// WatchersRegex selects the watchers watched, matched against the
	// lower-cased name from its start, as Python's re.match (default .*).
	WatchersRegex string
	// MsgRegex reads a heartbeat; its group pid names the worker (default
	// ^(?P<pid>.*);(?P<timestamp>.*)$, for "PID;TIMESTAMP").
	MsgRegex string
	// MaxCount is how many loops a worker may stay silent (default 3).
	MaxCount int
	// IP and Port are where heartbeats are received (default
	// 127.0.0.1:1664).
	IP   string
	Port int
	// StopSignal and GracefulTimeout override the watcher's own for the
	// stop of a silent worker; zero means the watcher's.
	StopSignal      syscall.Signal
	GracefulTimeout time.Duration
}

// ResourceWatcher is a ResourceWatcher plugin: every LoopRate the cpu and
// memory of one watcher's workers are sampled, and a watcher over (or
// under) a bound for more than MaxCount samples in a row is restarted.
type ResourceWatcher struct {
	Statsd
	// Watcher is the watcher watched (required; Circus's service is an
	// older name for it).
	Watcher string
	// LoopRate is how often it is sampled (default 60 s).
	LoopRate time.Duration
	// MaxCPU (default 90 %) and MinCPU (default off) bound the busiest and
	// the idlest worker's cpu, in percent of a core.
	MaxCPU, MinCPU Bound
	// MaxMem (default 90 %) and MinMem (default off) bound the largest and
	// smallest worker's memory: a percent of the machine's, or bytes.
	MaxMem, MinMem Bound
	// HealthThreshold bounds the mean of the busiest worker's cpu and the
	// largest one's memory percent (default 75; 0 turns it off).
	HealthThreshold float64
	// MaxCount is how many samples in a row may breach a bound before the
	// restart (default 3).
	MaxCount int
	// ProcessChildren also samples each worker's children on their own;
	// one that breaches a bound too long gets ChildSignal (default
	// SIGTERM).
	ProcessChildren bool
	ChildSignal     syscall.Signal
}

// Bound is an optional threshold; off unless Set. Value is a percent, or a
// number of bytes when Bytes.
type Bound struct {
	Set   bool
	Value float64
	Bytes bool
}

// StatsdEmitter is a StatsdEmitter plugin: a statsd counter for every event.
type StatsdEmitter struct {
	Statsd
}

// FullStats is a FullStats plugin: statsd gauges of every watcher's cpu
// and memory every LoopRate (default 60 s).
type FullStats struct {
	Statsd
	LoopRate time.Duration
}

// HTTPObserver is an HttpObserver plugin: a GET of CheckURL every LoopRate,
// timed into statsd.
type HTTPObserver struct {
	Statsd
	CheckURL string        // default http://localhost/
	Timeout  time.Duration // default 10 s
	// RestartOnError names the watcher restarted when the GET fails; ""
	// restarts none.
	RestartOnError string
	LoopRate       time.Duration // default 60 s
}

// CommandReloader is a CommandReloader plugin: every LoopRate (default
// 1 s) the program of each watcher is looked at on disk, and a watcher
// whose program changed is restarted.
type CommandReloader struct {
	LoopRate time.Duration
}

// RedisObserver is a RedisObserver plugin: redis's INFO every LoopRate,
// sent to statsd as gauges.
type RedisObserver struct {
	Statsd
	RedisURL string        // default redis://localhost:6379/0
	Timeout  time.Duration // default 5 s
	// RestartOnTimeout names the watcher restarted when redis does not
	// answer; "" restarts none.
	RestartOnTimeout string
	LoopRate         time.Duration // default 60 s
}

func (*WatchDog) pluginSpec()        {}
func (*ResourceWatcher) pluginSpec() {}
func (*StatsdEmitter) pluginSpec()   {}
func (*FullStats) pluginSpec()       {}
func (*HTTPObserver) pluginSpec()    {}
func (*CommandReloader) pluginSpec() {}
func (*RedisObserver) pluginSpec()   {}

// pluginKeys are the options each class reads, beyond use and active.
var pluginKeys = map[string][]string{
	FlappingPlugin: {"attempts", "window", "retry_in", "max_retry"},
	WatchDogPlugin: {"loop_rate", "watchers_regex", "msg_regex", "max_count", "ip", "port",
		"watchers_stop_signal", "watchers_graceful_timeout"},
	ResourceWatcherPlugin: append([]string{"watcher", "service", "loop_rate", "max_cpu", "min_cpu", "max_mem", "min_mem",
		"health_threshold", "max_count", "process_children", "child_signal"}, statsdKeys...),
	StatsdEmitterPlugin:   statsdKeys,
	FullStatsPlugin:       append([]string{"loop_rate"}, statsdKeys...),
	HTTPObserverPlugin:    append([]string{"check_url", "timeout", "restart_on_error", "loop_rate"}, statsdKeys...),
	CommandReloaderPlugin: {"loop_rate"},
	RedisObserverPlugin:   append([]string{"redis_url", "timeout", "restart_on_timeout", "loop_rate"}, statsdKeys...),
}

var statsdKeys = []string{"host", "port", "sample_rate", "application_name"}

// Circus's own defaults of the plugins' options.
const (
	defaultWatchdogMsgRegex = `^(?P<pid>.*);(?P<timestamp>.*)$`
	defaultLoopRate         = 60 * time.Second
)

// readPlugin reads one [plugin:NAME] section. A Flapping plugin updates
// flap, the limit every watcher starts from; `active = false` on it turns
// the limit off, as it stops Circus's plugin. Any other class must be one
// Ringmaster has built in, and its options are checked here, so that a
// mistake is a load error with its line rather than a plugin that fails
// once running.
func readPlugin(f *fields, name string, flap *flapping) *Plugin {
	p := &Plugin{Name: name, Options: map[string]string{}}
	for _, k := range f.sec.keys {
		if k.name != "use" {
			p.Options[k.name] = f.vals[k.name]
		}
	}
	f.str("use", &p.Use)
	active := true
	f.boolean("active", &active)
	class := p.Class()
	switch {
	case strings.TrimSpace(p.Use) == "":
		f.errorf("use", "missing: name the plugin class (for example %s)", WatchDogPlugin)
		return p
	case class == "" && !active:
		f.warnf("use", "%s is not a plugin Ringmaster has built in; ignored since active = false", p.Use)
		return p
	case class == "":
		if c, ok := suggest.Closest(strings.TrimSpace(p.Use), builtinClasses()); ok {
			f.errorf("use", "%s is not a plugin Ringmaster has built in; did you mean %s?", p.Use, c)
			return p
		}
		f.errorf("use", "%s is not a plugin Ringmaster has built in (it runs no Python); use one of Circus's: %s",
			p.Use, strings.Join(builtinClasses(), ", "))
		return p
	case class == FlappingPlugin:
		// The plugin's own defaults, which a Circus user of it expects,
		// rather than Ringmaster's built-in limit.
		*flap = flapping{attempts: 2, window: time.Second, retryIn: 7 * time.Second, maxRetry: 5}
		flap.read(f, "")
		if !active {
			flap.attempts = 0
		}
	default:
		// Checked even when inactive: turning it on must not reveal a
		// mistake only then.
		f.pluginSpec(class)
	}
	known := append([]string{"use", "active"}, pluginKeys[class]...)
	for _, k := range f.sec.keys {
		switch {
		case slices.Contains(known, k.name):
		case IsWatcherKey(k.name):
			f.warnf(k.name, "ignored: Circus runs a plugin as a watcher, which this option sets; Ringmaster runs it inside the arbiter")
		default:
			f.unknownKey(k.name, known)
		}
	}
	return p
}

// builtinClasses lists the classes in a stable order, for messages.
func builtinClasses() []string {
	return []string{FlappingPlugin, WatchDogPlugin, ResourceWatcherPlugin, StatsdEmitterPlugin, FullStatsPlugin,
		HTTPObserverPlugin, CommandReloaderPlugin, RedisObserverPlugin}
}

// pluginSpec reads the options of a built-in class other than Flapping.
func (f *fields) pluginSpec(class string) PluginSpec {
	switch class {
	case WatchDogPlugin:
		return f.watchDog()
	case ResourceWatcherPlugin:
		return f.resourceWatcher()
	case StatsdEmitterPlugin:
		return &StatsdEmitter{Statsd: f.statsd("app")}
	case FullStatsPlugin:
		s := &FullStats{Statsd: f.statsd("app"), LoopRate: defaultLoopRate}
		f.period("loop_rate", &s.LoopRate)
		return s
	case HTTPObserverPlugin:
		return f.httpObserver()
	case CommandReloaderPlugin:
		s := &CommandReloader{LoopRate: time.Second}
		f.period("loop_rate", &s.LoopRate)
		return s
	case RedisObserverPlugin:
		return f.redisObserver()
	}
	panic("BUG: pluginSpec of " + class)
}

func (f *fields) statsd(app string) Statsd {
	s := Statsd{Host: "localhost", Port: 8125, SampleRate: 1, ApplicationName: app}
	f.str("host", &s.Host)
	if strings.TrimSpace(s.Host) == "" {
		f.errorf("host", "empty: name the statsd host")
	}
	f.integer("port", &s.Port, 1, 65535)
	if f.float("sample_rate", &s.SampleRate) && (s.SampleRate <= 0 || s.SampleRate > 1) {
		f.errorf("sample_rate", "%v is out of range: a share of the metrics to send, more than 0 and at most 1", s.SampleRate)
	}
	f.str("application_name", &s.ApplicationName)
	return s
}

func (f *fields) watchDog() *WatchDog {
	s := &WatchDog{LoopRate: defaultLoopRate, WatchersRegex: ".*", MsgRegex: defaultWatchdogMsgRegex,
		MaxCount: 3, IP: "127.0.0.1", Port: 1664}
	f.period("loop_rate", &s.LoopRate)
	f.str("watchers_regex", &s.WatchersRegex)
	if _, err := MatchRegexp(s.WatchersRegex); err != nil {
		f.errorf("watchers_regex", "%v", err)
	}
	f.str("msg_regex", &s.MsgRegex)
	if re, err := regexp.Compile(s.MsgRegex); err != nil {
		f.errorf("msg_regex", "%v", err)
	} else if re.SubexpIndex("pid") < 0 {
		f.errorf("msg_regex", "%q has no group (?P<pid>...) for the worker's pid", s.MsgRegex)
	}
	f.integer("max_count", &s.MaxCount, 1, maxInt)
	f.str("ip", &s.IP)
	if ip := net.ParseIP(strings.TrimSpace(s.IP)); ip == nil && s.IP != "localhost" {
		f.errorf("ip", "%q is not an IP address", s.IP)
	} else if ip != nil && !ip.IsLoopback() {
		f.warnf("ip", "%s is not a loopback address: anyone who can reach it can send heartbeats that keep a hung worker alive", s.IP)
	}
	f.integer("port", &s.Port, 1, 65535)
	// Circus reads both as unset when false-y (0, empty).
	if v, ok := f.get("watchers_stop_signal"); ok && strings.TrimSpace(v) != "" && strings.TrimSpace(v) != "0" {
		f.signal("watchers_stop_signal", &s.StopSignal)
	}
	if v, ok := f.get("watchers_graceful_timeout"); ok && strings.TrimSpace(v) != "" {
		f.seconds("watchers_graceful_timeout", &s.GracefulTimeout, false)
	}
	return s
}

func (f *fields) resourceWatcher() *ResourceWatcher {
	s := &ResourceWatcher{Statsd: f.statsd("app"), LoopRate: defaultLoopRate,
		MaxCPU: Bound{Set: true, Value: 90}, MaxMem: Bound{Set: true, Value: 90},
		HealthThreshold: 75, MaxCount: 3, ChildSignal: syscall.SIGTERM}
	f.str("watcher", &s.Watcher)
	if v, ok := f.get("service"); ok {
		if s.Watcher == "" {
			s.Watcher = v
		}
		f.warnf("service", "deprecated: use watcher = %s", v)
	}
	if strings.TrimSpace(s.Watcher) == "" {
		key := "watcher"
		if _, ok := f.get("service"); ok {
			key = "service"
		}
		f.errorf(key, "missing: name the watcher to look after")
	}
	f.period("loop_rate", &s.LoopRate)
	f.bound("max_cpu", &s.MaxCPU, false)
	f.bound("min_cpu", &s.MinCPU, false)
	f.bound("max_mem", &s.MaxMem, true)
	f.bound("min_mem", &s.MinMem, true)
	if f.float("health_threshold", &s.HealthThreshold) && s.HealthThreshold < 0 {
		f.errorf("health_threshold", "%v is negative", s.HealthThreshold)
	}
	f.integer("max_count", &s.MaxCount, 0, maxInt)
	f.boolean("process_children", &s.ProcessChildren)
	f.signal("child_signal", &s.ChildSignal)
	return s
}

func (f *fields) httpObserver() *HTTPObserver {
	s := &HTTPObserver{Statsd: f.statsd("http_observer"), CheckURL: "http://localhost/", Timeout: 10 * time.Second,
		LoopRate: defaultLoopRate}
	f.str("check_url", &s.CheckURL)
	if u, err := url.Parse(s.CheckURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.errorf("check_url", "%q: want an http:// or https:// URL with a host", s.CheckURL)
	}
	f.period("timeout", &s.Timeout)
	f.str("restart_on_error", &s.RestartOnError)
	f.period("loop_rate", &s.LoopRate)
	return s
}

func (f *fields) redisObserver() *RedisObserver {
	s := &RedisObserver{Statsd: f.statsd("redis_observer"), RedisURL: "redis://localhost:6379/0", Timeout: 5 * time.Second,
		LoopRate: defaultLoopRate}
	f.str("redis_url", &s.RedisURL)
	if _, err := ParseRedisURL(s.RedisURL); err != nil {
		f.errorf("redis_url", "%v", err)
	}
	f.period("timeout", &s.Timeout)
	f.str("restart_on_timeout", &s.RestartOnTimeout)
	f.period("loop_rate", &s.LoopRate)
	return s
}

// flapping is a flapping limit: the defaults, then a Flapping plugin's
// options, then a watcher's flapping.* keys.
type flapping struct {
	attempts int
	window   time.Duration
	retryIn  time.Duration
	maxRetry int
}

func defaultFlapping() flapping {
	return flapping{defaultFlapAttempts, defaultFlapWindow, defaultFlapRetryIn, defaultFlapMaxRetry}
}

// read overrides l with the keys prefix+"attempts" and so on of f.
func (l *flapping) read(f *fields, prefix string) {
	f.integer(prefix+"attempts", &l.attempts, 0, maxInt)
	f.seconds(prefix+"window", &l.window, false)
	f.seconds(prefix+"retry_in", &l.retryIn, false)
	f.integer(prefix+"max_retry", &l.maxRetry, -1, maxInt)
}
