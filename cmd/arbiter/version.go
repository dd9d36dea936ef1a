package main

// version is what this binary reports as its version (--version, the
// console's header, the log line and the event of an upgrade in place)
// when the build sets it, as packagers and the upgrade tests do:
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/arbiter
//
// Left empty, the module version of the build information is used.
var version string
