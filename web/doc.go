// Package web is the arbiter's live console: one page, served with its
// assets from the binary (embed.FS, nothing from the network), that shows
// every watcher and worker, their cpu and memory, the event timeline and a
// worker's output as they change, and acts on them. It is what Circus's
// circus-web was, without its Python 2, its missing authentication and its
// GET links that act.
//
// # Routes
//
//	GET /              the page (assets/index.html)
//	GET /assets/NAME   its script and style sheet
//	GET /ws            the WebSocket: live data out, commands in
//	GET /metrics       Options.Routes: the operations endpoints (package
//	GET /healthz       metrics), behind the same authentication and
//	GET /readyz        access check as the page
//
// Nothing but the WebSocket acts: any other method is 405, so no link,
// image or form on another site can make the console do anything.
//
// # The stream
//
// On connect a page gets a snapshot: the arbiter, every watcher with its
// workers, the last 200 events and the last 150 stats samples. Then, in
// order: each event from the Bus as it happens; the new state of a watcher
// after an event changed it; a removed watcher's name; and, every 2 s while
// at least one page is open, a stats sample (cpu and rss per worker, per
// watcher and of the arbiter). Each of these messages carries seq, 1, 2,
// 3... for the arbiter's run; the snapshot carries the seq it is current to
// and the run's stream id. An autoscaled watcher's state carries its
// bounds and the connections waiting in its sockets' accept queues
// ("autoscale"), and each stats sample every watcher's number of workers
// and an autoscaled one's queue, which the page draws over time. A
// watcher's state also says since when it is active ("since"), the worker
// deaths it counted by reason ("restarts") and the last of them
// ("last_exit"), which the page shows beside its state. A page that reconnects with
// /ws?stream=ID&since=SEQ gets {"type": "resumed", "since": SEQ, "upto": N}
// and then exactly the messages it missed, SEQ+1 to N, from a ring of the
// last 4096 (8 MiB at most); or a fresh snapshot when the ring no
// longer has them, when they would not fit its queue, or when the arbiter
// was restarted (another stream). An arbiter upgraded in place is another
// stream under the same pid: its WebSocket closed with the old image, the
// page reconnects by itself (500 ms, then backing off to 5 s), gets the new
// image's snapshot, and its header shows the new version, marked as
// upgraded from the old one (from the arbiter.upgrade event when the
// snapshot has it, else from the versions the page saw). The message shapes are those of
// messages.go; assets/app.js reads them.
//
// Commands are Circus's control requests, {"id": .., "command": ..,
// "properties": {..}}, run through the same command table as the ZeroMQ
// control endpoint, so a click and a circusctl command behave alike and
// publish the same events. The answer is {"type": "reply", "id": ..,
// "reply": <Circus's reply>}. As over ZeroMQ, a command that changes workers
// answers at once unless its properties say "waiting": true; the page sends
// that, so a button stays busy until the work is done and a failure comes
// back to it. A page may have 8 commands in flight; a ninth is refused at
// once rather than queued.
//
// # Concurrency
//
// One hub goroutine owns the console's state: the numbering, the ring, the
// last events and samples, the watchers as last read, and the set of pages.
// It never waits: it reads the Bus (its own subscription of 4096 events;
// a gap in the Bus's seq makes it read every watcher again), hands the reads
// that can block (a watcher's loop, /proc) to a poller goroutine, and offers
// each message to each page without blocking. A page has one writer
// goroutine (gorilla/websocket allows one writer per connection) fed by
// a bounded queue (Options.Queue, 1024 messages), a reader goroutine (the
// HTTP handler's, which also keeps pings and pongs flowing), and a goroutine
// per command in flight. A page whose queue fills, or that takes no data for
// 10 s, is disconnected (close code 4008 when its socket still has room for
// the close frame); it comes back with its seq and resumes. A slow browser
// therefore costs its own memory, bounded, and never delays the arbiter, the
// hub or another page.
//
// # Security
//
// Without Options.Auth the console serves only a loopback listener
// (Serve refuses any other), and only requests whose Host names this
// machine (localhost, a loopback address, or Options.Hosts), so that a web
// page that rebinds its own DNS name to 127.0.0.1 cannot reach it. With
// Auth every request, the WebSocket included, needs HTTP Basic credentials;
// put TLS in front (a reverse proxy) when it crosses a network. The
// WebSocket's Origin must be the page's own (gorilla/websocket's default
// check), which with the absence of acting GETs makes actions CSRF-safe.
//
// Without Auth, who uses the console is who holds its HTTP connection, as
// the kernel says (Options.Identify: sock_diag's owner of the browser's
// socket, looked up once per connection): the page is shown only to those
// Options.Check lets run status, and each command from the page carries
// that identity to the command table, which applies the same [circus]
// access keys as to the ZeroMQ endpoint and audits it. With Auth, the
// authenticated user may do everything.
// A [Gate] asks the same of requests to other handlers: cmd/arbiter puts
// one in front of the operations endpoints on their own listener.
//
// Every response carries a Content-Security-Policy that allows nothing but
// the console's own scripts and styles, no framing, and nosniff. The page
// inserts every string from the arbiter or a worker as text, never as
// markup.
package web
