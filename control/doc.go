// Package control speaks Circus's control protocol: JSON requests and
// replies over a ZeroMQ ROUTER socket, byte for byte as circusd 0.19 does,
// so that Circus's circusctl and CircusClient drive Ringmaster unchanged.
// It is the transport only: a [Server] hands each decoded [Request] to a
// [Handler] (the command table, elsewhere) and sends back the [Reply];
// a [Client] is the DEALER side, for our circusctl.
//
//	srv, err := control.Listen("tcp://127.0.0.1:5555", table, control.ServerOptions{})
//	defer srv.Close()
//
//	c, err := control.Dial("tcp://127.0.0.1:5555", 5*time.Second)
//	reply, err := c.Call(ctx, "list", nil) // *CallError for {"status": "error"}
//
// # Lifecycle
//
// [Listen] binds at once, so a busy or forbidden endpoint is an error before
// anything starts (a non-loopback tcp host needs
// [ServerOptions.AllowRemote]; an ipc socket file gets mode 0600 and
// replaces a stale file only when nothing answers on it). [Server.Close]
// stops accepting, cancels the context of every Handle call in flight,
// drops every connection with whatever replies it had queued (Circus sets
// ZMQ_LINGER 0), waits for every goroutine the Server started, Handle
// calls included, and unlinks the ipc socket file. [Dial] connects and
// handshakes within its timeout; [Client.Close] fails the calls in flight
// and waits for the Client's two goroutines. Neither side reconnects.
//
// # Concurrency
//
// DESIGN.md, concurrency point 5: zmq4's own ROUTER handshakes inline in
// its accept loop with no deadline, so one silent TCP client would delay
// every reply. The Server runs its own accept loop, the server skeleton it
// shares with the events PUB (internal/zmqendpoint), and uses zmq4.Open
// (the ZMTP handshake and codec) per connection. Per connection there is one
// goroutine that handshakes under [ServerOptions.HandshakeTimeout] and
// then writes, and one reader. The reader decodes each request and starts
// one goroutine per request for [Handler.Handle], so a slow command (a
// "waiting" restart) delays no other request, on this connection or any
// other; at most [ServerOptions.MaxInFlight] per connection, beyond which
// that connection's reader waits. Replies go back through a bounded queue
// ([ServerOptions.QueueSize]) to the connection's writer, which alone
// writes to the socket, in batches, each under
// [ServerOptions.WriteTimeout]; a peer that reads nothing for that long is
// disconnected. Replies may leave in a different order than requests came:
// clients match them on "id".
//
// A [Client] has a reader goroutine (replies to the waiting call by id,
// others dropped) and a writer goroutine (requests, in order); Call and
// Cast are safe for concurrent use.
//
// # Protocol
//
// A request is one frame of UTF-8 JSON, {"id": ..., "command": ...,
// "properties": {...}, "msg_type": "cast"?}, from a DEALER (Circus's
// clients). A peer that puts an empty delimiter frame first, as a REQ
// socket does, gets its reply behind one too (circusd drops such requests).
// One connection is one peer: its DEALER identity is not used for routing.
//
// A reply is one frame, rendered as Python's json.dumps renders it: the
// separators ", " and ": ", non-ASCII as \uXXXX, floats as Python's repr,
// and Circus's key order ([Reply.Render]):
//
//	{"status": "ok", "time": 1795464666.2683172, <fields in order>, "id": <echo>}
//	{"status": "active", "time": ..., "id": ...}      status with a name ([State])
//	{"status": "error", "reason": "...", "tb": null, "time": ..., "errno": 3, "id": ...}
//
// Casts get no reply. Malformed input is answered, never dropped (circusd
// answers only the first of these): a body that is not JSON or not UTF-8
// gets errno 1 "json invalid" with id null; JSON that is not an object,
// has no string "command", or a "properties" that is not an object gets
// errno 3 ([DecodeRequest]); a message of other than one frame (after the
// optional delimiter) gets errno 3 "invalid message: N frames"; one larger
// than [ServerOptions.MaxMessage] (1 MiB) is read through without being
// buffered and gets errno 3, and a frame declaring more than 16 times that
// closes the connection. The property getters ([Request.String],
// [Request.Int], ...) word type errors as Circus does: "message invalid
// 'nb' must be an integer", "message invalid 'name' is missing".
package control
