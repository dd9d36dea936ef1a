// Package handover carries what an arbiter hands to the next image of
// itself when it upgrades in place: it execs its new binary keeping its
// pid, its children and their fds, so the state goes across the exec as a
// JSON document in a memfd, and every fd the new image needs keeps its
// number (close-on-exec cleared) and is named in that document.
//
// The old image writes the document with [Write] and names it in the
// environment ([EnvState]); the new one finds it with [FromEnv]. A format
// the new image does not know is refused before anything is touched
// ([ErrFormat]), so that the old binary, kept open as an fd for the way
// back, can be executed again with the same document.
//
// # Listeners
//
// The arbiter's own listeners (the ZeroMQ endpoints, the console, the
// metrics) are bound through [Listen] under a key naming the endpoint as
// configured. [Listeners] gives the old image the fd of each one still
// open, made inheritable ([ListenersBack] undoes it when the exec
// fails); the new image passes that table to [Inherit] before binding
// anything, and the same Listen calls then take the inherited listeners
// instead of binding: a connection waiting in a backlog across the exec
// is accepted after it, and none is refused. What nobody took is left to
// [Unclaimed].
package handover
