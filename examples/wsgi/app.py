"""A WSGI application served on a socket inherited from the arbiter.

    python3 examples/wsgi/app.py --fd N

does what `chaussette --fd N` does for Circus users: it wraps the listening
socket it was given in socket.socket(fileno=N) and serves on it, never
binding anything itself. Only the standard library is used (wsgiref), so
Debian's python3 is enough.

GET / answers "hello from pid PID". On SIGTERM or SIGINT the worker stops
accepting, finishes the request in hand and exits 0.
"""

import argparse
import os
import signal
import socket
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        body = b"ok\n"
    elif path == "/":
        body = ("hello from pid %d\n" % os.getpid()).encode()
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


class QuietHandler(WSGIRequestHandler):
    # One stderr line per request would flood the arbiter's output.
    def log_request(self, code="-", size="-"):
        pass


def server_on_fd(fd):
    """Builds a WSGIServer around an inherited listening socket."""
    sock = socket.socket(fileno=fd)
    # The socket is shared with the other workers: after select() reports a
    # connection, another worker may accept it first. Non-blocking accept
    # then fails with EAGAIN, which socketserver ignores, instead of hanging
    # until the next connection (and delaying a stop).
    sock.setblocking(False)
    server = WSGIServer(
        sock.getsockname(), QuietHandler, bind_and_activate=False
    )
    # Replace the unbound socket socketserver created with the inherited
    # one. TCPServer.server_bind would bind; do only what it does after.
    server.socket.close()
    server.socket = sock
    addr = sock.getsockname()
    if isinstance(addr, tuple):
        server.server_name, server.server_port = addr[0], addr[1]
    else:  # a unix socket: its path
        server.server_name, server.server_port = "localhost", 80
    server.setup_environ()
    server.set_app(application)
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fd", type=int, required=True,
        help="inherited listening socket (Circus: $(circus.sockets.NAME))",
    )
    args = parser.parse_args()
    try:
        server = server_on_fd(args.fd)
    except OSError as e:
        sys.exit("app.py: fd %d: %s (is it a listening socket?)" % (args.fd, e))

    stopping = threading.Event()
    # Handlers run in the main thread; serve_forever runs in another so that
    # shutdown() (which waits for the loop, hence for the request in hand)
    # is not called from inside the loop it waits for.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    print("app.py[%d]: serving on fd %d" % (os.getpid(), args.fd),
          file=sys.stderr, flush=True)
    while not stopping.wait(timeout=3600):
        pass
    server.shutdown()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
