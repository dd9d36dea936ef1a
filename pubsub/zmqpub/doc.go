// Package zmqpub is Ringmaster's ZeroMQ PUB endpoint ([Sink]), which
// Circus's tools and any libzmq SUB read, the SUB client ([Dial]) that
// circusctl listen and top use, and [Forward], the glue from a
// [pubsub.Bus] to a Sink. It is the only part of pubsub that links the
// ZeroMQ binding; the arbiter imports pubsub alone.
//
// # Lifecycle
//
// [Listen] binds at once, so a busy or forbidden endpoint is an error
// before anything starts, and starts the accept loop. [Sink.Close] stops
// accepting, drops every connection with whatever was queued for it (Circus
// sets ZMQ_LINGER 0), waits for every goroutine the Sink started, and
// unlinks an ipc socket file. [Forward] returns when its context ends or
// its subscription is closed; stop it before closing the Sink.
//
// # Concurrency
//
// [Sink.Send] never blocks (DESIGN.md, concurrency point 5). The Sink owns
// its sockets through the server skeleton it shares with the control
// endpoint (internal/zmqendpoint): an accept loop, and per connection one
// goroutine that does the ZMTP handshake under
// [SinkOptions.HandshakeTimeout] and then writes, plus one that reads
// subscriptions. A connection that is silent or sends garbage costs only
// its own goroutine until its handshake deadline. Each subscriber has its
// own queue of [SinkOptions.QueueSize] messages (libzmq's SNDHWM: when it is
// full, messages are dropped for that subscriber and counted, see
// [Sink.Stats]) and each write carries [SinkOptions.WriteTimeout]; a
// subscriber that takes nothing for that long is disconnected. Nothing a
// subscriber does can delay Send, another subscriber, or a new connection.
//
// # Protocol
//
// The Sink speaks ZMTP 3.0 with the NULL mechanism as a PUB, through
// zmq4's connection layer (zmq4.Open, Conn.RecvMsg); libzmq and zmq4 SUBs
// connect to it unchanged. Filtering is on the publisher side, by prefix:
// a subscriber gets a message when one of its subscriptions (sent as
// "\x01prefix", withdrawn as "\x00prefix") prefixes the topic; the empty
// prefix matches everything. As with any PUB, events sent before a
// subscriber's subscription arrives are not delivered to it. Each message
// is written with writev, several queued messages per system call, from
// bytes encoded once per Send for all subscribers. Inbound frames over
// 1 MiB close the connection (zmq4 would allocate whatever size a peer
// declares). A PONG that zmq4 sends in answer to a heartbeat PING goes out
// between whole messages. Topics and bodies are package pubsub's
// ([pubsub.Topic], [pubsub.Body]).
package zmqpub
