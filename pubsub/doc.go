// Package pubsub carries Ringmaster's lifecycle events: the [Event] every
// layer shares, the in-process [Bus] that fans them out without ever
// blocking the arbiter, and Circus's wire rendering ([Topic], [Body]). It
// does not speak ZeroMQ: the PUB endpoint that Circus's tools and any libzmq
// SUB read is package zmqpub beneath it, so that the arbiter, which imports
// this package for Event, does not link the ZeroMQ binding.
//
// The arbiter's main wires them as
//
//	bus := pubsub.NewBus()
//	sink, err := zmqpub.Listen("tcp://127.0.0.1:5556", zmqpub.SinkOptions{})
//	go zmqpub.Forward(ctx, bus.Subscribe(1000), sink) // owned and waited for by main
//	... watchers call bus.Publish(ev) ...
//
// # Lifecycle
//
// A [Bus] needs no shutdown; a [Subscription] ends with
// [Subscription.Close], which closes its channel.
//
// # Concurrency
//
// Publishing never blocks (DESIGN.md, concurrency point 4).
// [Bus.Publish] may be called from any number of goroutines. It takes one
// short mutex to number the event and make a non-blocking send to each
// subscription's bounded channel; a full channel loses that event, for that
// subscription only, and counts it ([Subscription.Dropped]). The Bus has no
// goroutines.
//
// # Events
//
// On the wire (package zmqpub) each event is one message of two frames,
// [topic, body]. The topic is
// "watcher.<name>.<kind>", the watcher's name lower-cased with spaces as
// "_" ("Web Srv" → watcher.web_srv.start), or "arbiter.<kind>" for the
// arbiter's own events, a prefix Circus never uses. The body is JSON exactly
// as Circus's Python writes it: keys in this order, ", " and ": "
// separators, non-ASCII escaped as \uXXXX, time as float seconds since the
// epoch with at most six decimals ("1795464673.79315", "1795464673.0").
//
//	topic                        body                                              from
//	watcher.<name>.spawn         {"process_pid": P, "time": T, "seq": N}           Circus
//	watcher.<name>.reap          {"process_pid": P, "time": T, "exit_code": E,     Circus
//	                              "seq": N}  E = exit status, or -signal if killed
//	watcher.<name>.kill          {"process_pid": P, "time": T, "seq": N}           Circus
//	watcher.<name>.start         {"time": T, "seq": N}                             Circus
//	watcher.<name>.stop          {"time": T, "seq": N}                             Circus
//	watcher.<name>.reload        {"time": T, "seq": N}                             Circus
//	watcher.<name>.updated       {"time": T, "seq": N}                             Circus
//	watcher.<name>.add           {"time": T, "seq": N}                             Circus
//	watcher.<name>.remove        {"time": T, "seq": N}                             Circus
//	watcher.<name>.flapping      {"time": T, "reason": R, "seq": N}                Ringmaster
//	watcher.<name>.health        {"process_pid": P, "time": T, "reason": R,        Ringmaster
//	                              "seq": N}
//	watcher.<name>.limit         {"process_pid": P, "time": T, "reason": R,        Ringmaster
//	                              "seq": N}
//	watcher.<name>.oom           {"process_pid": P, "time": T, "reason": R,        Ringmaster
//	                              "seq": N}  P = 0 when the kernel does not say
//	watcher.<name>.ready         {"process_pid": P, "time": T, "seq": N}           Ringmaster
//	watcher.<name>.scale         {"from": F, "to": N2, "time": T, "reason": R,     Ringmaster
//	                              "seq": N}  the autoscaler resized the pool from
//	                              F to N2 workers; R says why ("queue 15 for
//	                              200ms", "queue empty for 30s", "autoscale.max
//	                              is now 8")
//	watcher.<name>.hook_success  {"name": H, "time": T, "seq": N}                  Circus
//	watcher.<name>.hook_failure  {"name": H, "time": T, "error": E, "seq": N}      Circus
//	arbiter.upgrade              {"pid": P, "from": V1, "to": V2, "time": T,     Ringmaster
//	                              "seq": N}  the arbiter re-executed itself in
//	                              place (same pid P, every worker kept), from
//	                              build version V1 to V2; published by the new
//	                              image, seq going on from the old one's
//	arbiter.upgrade_failed       {"pid": P, "time": T, "reason": R, "seq": N}    Ringmaster
//	                              an upgrade in place did not happen, or the
//	                              new image gave up and the old one is back
//	watcher.<name>.command       {"command": C, "properties": {...}, "peer": W,    Ringmaster
//	 (arbiter.command when the    "uid": U, "pid": P, "via": V, "status": S,
//	 command names no watcher)    "reason": R, "result": {...}, "time": T,
//	                              "seq": N}
//	                              who ran a command that may change something, or
//	                              was refused it (the audit trail, package access):
//	                              U and P null when unknown, V "control",
//	                              "console" or "plugin", S "ok", "error" or
//	                              "refused", reason only with an error, result
//	                              (the reply's fields: {"numprocesses": 3})
//	                              only when there are some; properties and
//	                              result are compact JSON, as Go writes it
//	arbiter.orphan               {"process_pid": P, "time": T, "exit_code": E,     Ringmaster
//	                              "seq": N}
//	arbiter.start                {"time": T, "seq": N}                             Ringmaster
//	arbiter.stop                 {"time": T, "seq": N}                             Ringmaster
//	arbiter.reloadconfig         {"time": T, "seq": N}                             Ringmaster
//
// "seq" is the one key Ringmaster adds to Circus's bodies: the Bus numbers
// its events 1, 2, 3... without gaps, so a subscriber that sees a jump knows
// it missed events (a full queue here, or its own high-water mark). Circus's
// clients read bodies as dicts and ignore it. A flapping event does not
// replace Circus's stop: the watcher that stops also publishes stop. On a
// restart the order is Circus's: kill×N, reap×N, stop, spawn×N, start.
package pubsub
