package config

import (
	"time"
)

// builtinPlugins are the plugins Circus 0.19 ships. Ringmaster implements
// Flapping itself (see [Watcher].FlapAttempts); the others are accepted
// without a warning because a later Ringmaster can provide them, whereas a
// third-party Python class never can.
var builtinPlugins = map[string]bool{
	flappingPlugin:                                    true,
	"circus.plugins.watchdog.WatchDog":                true,
	"circus.plugins.resource_watcher.ResourceWatcher": true,
	"circus.plugins.statsd.StatsdEmitter":             true,
	"circus.plugins.statsd.FullStats":                 true,
	"circus.plugins.http_observer.HttpObserver":       true,
	"circus.plugins.command_reloader.CommandReloader": true,
	"circus.plugins.redis_observer.RedisObserver":     true,
}

const flappingPlugin = "circus.plugins.flapping.Flapping"

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

// readPlugin reads one [plugin:NAME] section. A Flapping plugin updates
// flap, the limit every watcher starts from; `active = false` on it turns
// the limit off, as it stops Circus's plugin.
func readPlugin(f *fields, name string, flap *flapping) *Plugin {
	p := &Plugin{Name: name, Options: map[string]string{}}
	for _, k := range f.sec.keys {
		if k.name != "use" {
			p.Options[k.name] = f.vals[k.name]
		}
	}
	f.str("use", &p.Use)
	switch {
	case p.Use == "":
		f.errorf("use", "missing: name the plugin class (for example %s)", flappingPlugin)
	case p.Use == flappingPlugin:
		// The plugin's own defaults, which a Circus user of it expects,
		// rather than Ringmaster's built-in limit.
		*flap = flapping{attempts: 2, window: time.Second, retryIn: 7 * time.Second, maxRetry: 5}
		flap.read(f, "")
		active := true
		f.boolean("active", &active)
		if !active {
			flap.attempts = 0
		}
	case !builtinPlugins[p.Use]:
		f.warnf("use", "%s is a Python plugin, which Ringmaster cannot run; ignored", p.Use)
	}
	return p
}
