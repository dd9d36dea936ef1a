// A Node HTTP server on a listening socket the arbiter binds and passes
// down, never binding one itself:
//
//   node examples/recipes/node/server.js --fd N
//
// Without --fd it takes fd 3, the first socket of systemd's LISTEN_FDS.
//
// GET / answers "hello from pid PID". On SIGTERM it stops accepting (the
// socket stays open in the arbiter, so connections not yet accepted wait
// there for another worker), finishes the requests in hand and exits 0.
'use strict';

const http = require('node:http');

function inheritedFD(argv) {
  const i = argv.indexOf('--fd');
  if (i < 0) {
    return 3;
  }
  const fd = Number(argv[i + 1]);
  if (!Number.isInteger(fd) || fd < 0) {
    console.error(`server.js: --fd ${argv[i + 1]}: want a file descriptor number`);
    process.exit(2);
  }
  return fd;
}

const fd = inheritedFD(process.argv.slice(2));
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end('ok\n');
    return;
  }
  res.setHeader('Content-Type', 'text/plain');
  res.end(`hello from pid ${process.pid}\n`);
});

server.on('error', (err) => {
  console.error(`server.js[${process.pid}]: fd ${fd}: ${err.message}`);
  process.exit(1);
});

// listen({fd}) adopts the socket as it is: Node neither binds nor
// listens again, and libuv copes with the non-blocking socket Circus's
// dialect hands out.
server.listen({fd}, () => {
  console.error(`server.js[${process.pid}]: serving on fd ${fd}`);
});

process.on('SIGTERM', () => {
  // close() stops accepting and calls back once every connection has
  // ended; idle keep-alive connections are closed at once.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
