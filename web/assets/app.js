// Ringmaster's live console.
//
// One WebSocket (/ws) carries everything: the server pushes a snapshot, then
// events, watcher states, removals and stats samples, each numbered by seq;
// the page sends Circus control requests on the same socket and matches the
// replies by id. The DOM is built once per watcher and per worker and then
// updated in place, so that a stats sample every 2 s for a few hundred
// workers costs a few text and attribute writes, and focus and scroll
// positions survive updates.
//
// Every string that comes from the server (names, cmd, reasons, worker
// output) reaches the DOM as text (textContent, text nodes, attributes),
// never as HTML.
(() => {
  'use strict';

  const MAX_POINTS = 150; // per sparkline series: 5 minutes at one sample every 2 s
  const MAX_EVENTS = 300;
  const TAIL_LINES = 200;
  const TAIL_POLL_MS = 1000;
  const TAIL_KEEP = 5000; // lines the output panel keeps before dropping the oldest
  const BACKOFF_MIN = 500;
  const BACKOFF_MAX = 5000;
  const TOAST_MS = 6000;
  const GHOST_MS = 5000; // an exited worker's row stays this long, unless a new worker takes its place
  const MAX_REAPS = 1000; // exit codes remembered, by pid, for the rows of exited workers
  const SIGNALS = ['HUP', 'INT', 'QUIT', 'USR1', 'USR2', 'TERM', 'KILL', 'CONT', 'STOP'];
  // Linux numbering, to name the signal of a kill event or a negative exit code.
  const SIGNAMES = {
    1: 'HUP', 2: 'INT', 3: 'QUIT', 4: 'ILL', 5: 'TRAP', 6: 'ABRT', 7: 'BUS', 8: 'FPE', 9: 'KILL',
    10: 'USR1', 11: 'SEGV', 12: 'USR2', 13: 'PIPE', 14: 'ALRM', 15: 'TERM', 17: 'CHLD', 18: 'CONT',
    19: 'STOP', 20: 'TSTP', 21: 'TTIN', 22: 'TTOU', 24: 'XCPU', 25: 'XFSZ', 26: 'VTALRM', 27: 'PROF',
    28: 'WINCH', 29: 'IO', 30: 'PWR', 31: 'SYS',
  };
  // Deaths by these are how workers are usually asked to stop: not alarming.
  const STOP_SIGNALS = new Set([2, 3, 15]);
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const SPARK_W = 150; // viewBox units: one per point
  const SPARK_H = 20;

  // ---- helpers -------------------------------------------------------------

  const byId = (id) => document.getElementById(id);

  // h builds an element. Children that are strings become text nodes, which
  // is what keeps server data from ever being parsed as markup.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    el.append(...children.filter((c) => c != null));
    return el;
  }

  function button(action, text, label, cls) {
    const opens = action === 'signal' || action === 'tail'; // a chooser or the output panel
    return h('button', { type: 'button', class: cls || 'btn', 'data-action': action, 'aria-label': label, title: label,
      'aria-expanded': opens ? 'false' : null }, text);
  }

  // setText writes only on change: most updates change nothing, and
  // untouched nodes cost no style or layout work.
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function fmtBytes(n) {
    if (n == null || !Number.isFinite(n)) return '–';
    const units = ['B', 'K', 'M', 'G', 'T'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 || n >= 100 ? String(Math.round(n)) : n.toFixed(1)) + units[i];
  }

  function fmtCPU(v) {
    if (v == null || !Number.isFinite(v)) return '–';
    return (v >= 100 ? String(Math.round(v)) : v.toFixed(1)) + '%';
  }

  function fmtAge(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m${pad(s % 60)}s`;
    const hr = Math.floor(m / 60);
    if (hr < 24) return `${hr}h${pad(m % 60)}m`;
    return `${Math.floor(hr / 24)}d${pad(hr % 24)}h`;
  }

  function fmtClock(t, millis = true) {
    const d = new Date(t * 1000);
    const s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return millis ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
  }

  const signame = (n) => (SIGNAMES[n] ? `SIG${SIGNAMES[n]}` : `signal ${n}`);

  // The server's clock, seen from here: ages are computed on the client
  // every second from server timestamps, so a skewed client clock would show
  // wrong ages. Skew under 3 s is sampling latency, not worth correcting.
  let clockOffset = 0;
  const serverNow = () => Date.now() / 1000 + clockOffset;
  function noteServerTime(t) {
    const skew = t - Date.now() / 1000;
    clockOffset = Math.abs(skew) > 3 ? skew : 0;
  }

  // ---- toast -----------------------------------------------------------------

  let toastTimer = 0;
  function toast(text) {
    const el = byId('toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
  }

  // ---- connection ------------------------------------------------------------

  const conn = {
    ws: null,
    lastSeq: 0, // the last broadcast message processed
    stream: '', // the snapshot's stream id, sent back to resume
    synced: false, // a snapshot was applied at least once: there is a state to resume
    upto: null, // resuming: the seq up to which the page catches up before it is live
    backoff: BACKOFF_MIN,
  };

  function setConn(state, text) {
    const el = byId('conn');
    el.dataset.state = state;
    document.body.dataset.conn = state; // dims what is shown while it may be stale
    setText(byId('conn-text'), text);
    document.title = state === 'live' ? 'Ringmaster' : 'Ringmaster (offline)';
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // The server names each run of its numbering (stream): with it, a page
    // that comes back gets exactly what it missed; without, a snapshot.
    let since = '';
    if (conn.synced) {
      since = `?since=${conn.lastSeq}`;
      if (conn.stream) since += `&stream=${encodeURIComponent(conn.stream)}`;
    }
    const ws = new WebSocket(`${scheme}//${location.host}/ws${since}`);
    conn.ws = ws;
    conn.upto = null;
    setConn('connecting', 'connecting…');
    // Live once the page is current: after a snapshot, or after a resumed
    // message and the messages it announces (see onMessage).
    ws.addEventListener('message', (e) => { if (ws === conn.ws) onMessage(ws, e.data); });
    ws.addEventListener('close', () => onClose(ws));
  }

  function markLive() {
    setConn('live', 'live');
    resumeTail();
  }

  function onClose(ws) {
    if (ws !== conn.ws) return;
    conn.ws = null;
    failPending();
    const delay = conn.backoff;
    conn.backoff = Math.min(conn.backoff * 2, BACKOFF_MAX);
    setConn('connecting', `offline, retrying in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(connect, delay);
  }

  function onMessage(ws, raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (msg.type === 'reply') {
      onReply(msg);
      return;
    }
    // A snapshot replaces everything whatever its seq: after an arbiter
    // restart the new server counts from 1 again.
    if (msg.type === 'snapshot') {
      applySnapshot(msg);
      conn.lastSeq = msg.seq || 0;
      conn.stream = typeof msg.stream === 'string' ? msg.stream : '';
      conn.synced = true;
      conn.upto = null;
      conn.backoff = BACKOFF_MIN;
      markLive();
      return;
    }
    // Resuming: the server sends the messages after since up to upto (the
    // last it had), then live ones. The page is current once it has read
    // up to upto, at once if it missed nothing.
    if (msg.type === 'resumed') {
      conn.backoff = BACKOFF_MIN;
      conn.upto = typeof msg.upto === 'number' ? msg.upto : conn.lastSeq;
      catchUp();
      return;
    }
    if (typeof msg.seq !== 'number' || msg.seq <= conn.lastSeq) return;
    if (conn.synced && msg.seq !== conn.lastSeq + 1) {
      // A gap means a message was lost: reconnect and let the server resend
      // from lastSeq, rather than show a state that silently drifted.
      ws.close();
      return;
    }
    conn.lastSeq = msg.seq;
    conn.backoff = BACKOFF_MIN;
    switch (msg.type) {
      case 'event': addEvent(msg.event); noteLiveEvent(msg.event); break;
      case 'watcher': upsertWatcher(msg.watcher); break;
      case 'removed': removeWatcher(msg.name); break;
      case 'stats': addSample(msg, true); break;
    }
    catchUp();
  }

  function catchUp() {
    if (conn.upto === null || conn.lastSeq < conn.upto) return;
    conn.upto = null;
    markLive();
  }

  // ---- requests --------------------------------------------------------------

  let nextId = 0;
  const pending = new Map(); // id -> {command, props, btn, onReply}
  const busyCount = new WeakMap(); // button -> requests in flight

  function setBusy(btn, delta) {
    if (!btn) return;
    const n = (busyCount.get(btn) || 0) + delta;
    busyCount.set(btn, n);
    btn.classList.toggle('busy', n > 0);
    if (n > 0) btn.setAttribute('aria-busy', 'true');
    else btn.removeAttribute('aria-busy');
  }

  // send sends a Circus request. btn (optional) shows busy until the reply;
  // onReply (optional) takes the reply object, else an error goes to the
  // toast. A busy button still accepts clicks: the server queues commands on
  // one watcher in order, and a second incr is a legitimate request.
  function send(command, props, btn, onReply) {
    const ws = conn.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      const rep = { status: 'error', reason: 'not connected', lost: true };
      if (onReply) onReply(rep);
      else toast(`${command}: not connected to the arbiter`);
      return;
    }
    const id = ++nextId;
    pending.set(id, { command, props, btn, onReply });
    setBusy(btn, 1);
    ws.send(JSON.stringify({ id, command, properties: props }));
  }

  function onReply(msg) {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    setBusy(p.btn, -1);
    const rep = msg.reply || {};
    if (p.onReply) p.onReply(rep);
    else if (rep.status !== 'ok') toast(describeFailure(p, rep.reason));
  }

  // failPending ends the requests of a lost connection: their replies will
  // never come, and whether they took effect shows in the next state.
  function failPending() {
    let lost = 0;
    for (const p of pending.values()) {
      setBusy(p.btn, -1);
      if (p.onReply) p.onReply({ status: 'error', reason: 'connection lost', lost: true });
      else lost++;
    }
    pending.clear();
    if (lost) toast(`connection lost: the outcome of ${lost} command${lost > 1 ? 's' : ''} is unknown`);
  }

  // describeFailure says which click failed, unless the reason already
  // starts with the command (reloadconfig's does).
  function describeFailure(p, reason) {
    reason = reason || 'failed';
    if (reason.startsWith(`${p.command}:`)) return reason;
    const who = [p.props.name, p.props.pid && `pid ${p.props.pid}`].filter(Boolean).join(' ');
    return `${who ? `${p.command} ${who}` : p.command}: ${reason}`;
  }

  // ---- arbiter header ----------------------------------------------------------

  let arbiter = {};
  let arbiterStats = null;
  // The last in-place upgrade of this arbiter ({from, to, time}), which
  // the header keeps showing: the pid stays, the program changes, and the
  // page, whose WebSocket the upgrade closed, came back by itself.
  let upgraded = null;

  function renderArbiter() {
    setText(byId('arb-pid'), arbiter.pid ? String(arbiter.pid) : '–');
    const ver = byId('arb-version');
    setText(ver, arbiter.version || '–');
    ver.classList.toggle('upgraded', upgraded !== null);
    if (upgraded) {
      ver.dataset.upgradedFrom = upgraded.from;
      ver.title = `upgraded in place from ${upgraded.from} at ${fmtClock(upgraded.time)}`;
    } else {
      delete ver.dataset.upgradedFrom;
      ver.title = '';
    }
    const cfg = byId('arb-config');
    setText(cfg, arbiter.config || '–');
    cfg.title = arbiter.config || '';
    setText(byId('arb-endpoint'), arbiter.endpoint || '–');
    renderArbiterTicks();
  }

  function renderArbiterTicks() {
    setText(byId('arb-uptime'), arbiter.started ? fmtAge(serverNow() - arbiter.started) : '–');
    setText(byId('arb-cpu'), fmtCPU(arbiterStats && arbiterStats.cpu));
    setText(byId('arb-rss'), fmtBytes(arbiterStats && arbiterStats.rss));
  }

  // noteUpgrade records an in-place upgrade from version from to version
  // to; toast says it to whoever watches the page.
  function noteUpgrade(from, to, time, toastIt) {
    upgraded = { from: from || '?', to: to || '?', time };
    renderArbiter();
    if (toastIt) toast(`arbiter upgraded in place: ${upgraded.from} → ${upgraded.to}`);
  }

  // The versions of an upgrade event, when the server sends them.
  const version = (v) => (typeof v === 'string' && v ? v : '');

  // noteLiveEvent tells of an upgrade, or of one that failed, as it
  // happens. (A page seldom sees an upgrade live: the exec closes its
  // WebSocket, and the new image's snapshot tells it instead.)
  function noteLiveEvent(ev) {
    if (!ev) return;
    if (ev.kind === 'upgrade') noteUpgrade(version(ev.from) || arbiter.version, version(ev.to), ev.time, true);
    if (ev.kind === 'upgrade_failed') toast(`upgrade failed, the arbiter runs on: ${ev.reason || 'no reason given'}`);
  }

  // ---- watchers ----------------------------------------------------------------

  // The workers table's columns: class, header, header for screen readers only.
  const COLUMNS = [['c-wid', 'wid'], ['c-pid', 'pid'], ['c-age', 'age'], ['c-num', 'cpu'], ['c-spark', 'cpu history', true],
    ['c-num', 'rss'], ['c-spark', 'rss history', true], ['c-mark', 'status', true], ['c-act', 'actions', true]];

  const watchers = new Map(); // name -> entry, see createWatcher
  const expectedExit = new Set(); // pids told to stop (kill event, stopping): their reap is not alarming

  function createWatcher(name) {
    // rows: the live workers' rows by pid; ghosts: the rows of workers
    // that exited, by element; successors: rows of workers started while
    // others were stopping (see syncRows).
    const e = { name, rows: new Map(), ghosts: new Map(), successors: [], sweepTimer: 0, cmd: null, sockets: null };
    e.stateEl = h('span', { class: 'pill', 'data-role': 'state' });
    // What the watcher does or waits for beyond its state: "flapping,
    // retry 1 of 5 in 6s", "backoff: EMFILE, retry in 2s".
    e.detailEl = h('span', { class: 'detail', 'data-role': 'detail' });
    e.countEl = h('span', { 'data-role': 'count' }, '0');
    e.targetEl = h('span', { 'data-role': 'target' }, '0');
    e.countBox = h('span', { class: 'count', title: 'live workers / numprocesses' }, e.countEl, h('span', { class: 'sep' }, '/'), e.targetEl);
    e.cpuEl = h('span', { class: 'num', 'data-role': 'cpu' }, '–');
    e.rssEl = h('span', { class: 'num', 'data-role': 'rss' }, '–');
    e.cpuSpark = spark('cpu');
    e.rssSpark = spark('rss');
    // An autoscaled watcher's queue: the connections waiting in its
    // sockets' accept queues, as a gauge against a full pool's worth
    // (autoscale.max) and over time, beside its number of workers.
    e.queueEl = h('span', { class: 'num', 'data-role': 'queue' }, '–');
    e.queueGauge = h('meter', { class: 'gauge', min: '0', max: '1', value: '0', 'aria-hidden': 'true' });
    e.queueSpark = spark('queue');
    e.workersSpark = spark('workers');
    e.scaleBox = h('span', { class: 'metric', 'data-role': 'autoscale', hidden: true },
      h('span', { class: 'k' }, 'queue'), e.queueEl, e.queueGauge, e.queueSpark,
      h('span', { class: 'k' }, 'workers'), e.workersSpark);
    const actions = h('div', { class: 'actions', role: 'group', 'aria-label': `Actions on ${name}` },
      button('decr', '−', `Remove a worker from ${name}`, 'btn icon'),
      button('incr', '+', `Add a worker to ${name}`, 'btn icon'),
      button('start', 'start', `Start ${name}`),
      button('stop', 'stop', `Stop ${name}`),
      button('restart', 'restart', `Restart ${name}`),
      button('reload', 'reload', `Reload ${name}`),
      button('signal', 'signal…', `Send a signal to ${name}`),
      // Every worker's output, the exited ones' too: the last words of a
      // crash, or of a watcher stopped for flapping, which has no rows.
      button('tail', 'output', `Show the output of ${name}'s workers, exited ones included`));
    createLife(e);
    e.cmdEl = h('code', { class: 'cmd', 'data-role': 'cmd' });
    e.socketsEl = h('span', { class: 'sockets', 'data-role': 'sockets' });
    e.tbody = h('tbody');
    e.table = h('table', { class: 'workers' },
      h('thead', {}, h('tr', {}, ...COLUMNS.map(([cls, text, hidden]) =>
        h('th', { scope: 'col', class: cls }, hidden ? h('span', { class: 'sr' }, text) : text)))),
      e.tbody);
    e.noWorkers = h('p', { class: 'no-workers' }, 'no workers');
    e.el = h('section', { class: 'watcher', 'data-watcher': name, 'aria-label': `Watcher ${name}` },
      h('div', { class: 'w-head' },
        h('h2', { class: 'w-name', title: name }, name),
        e.stateEl, e.detailEl, e.countBox, actions),
      h('div', { class: 'w-meta' }, e.cmdEl, e.socketsEl, e.lifeBox,
        h('span', { class: 'metric', title: 'cpu of all workers (% of one core), last 5 minutes' },
          h('span', { class: 'k' }, 'cpu'), e.cpuEl, e.cpuSpark),
        h('span', { class: 'metric', title: 'rss of all workers, last 5 minutes' },
          h('span', { class: 'k' }, 'rss'), e.rssEl, e.rssSpark),
        e.scaleBox),
      e.table,
      e.noWorkers);
    return e;
  }

  // renderDetail shows a watcher's detail, its "in 6.2s" counted down to
  // the retry time the server sent, so that it does not go stale between
  // two states.
  function renderDetail(e) {
    let text = e.detail;
    if (e.retryAt && / in [0-9.]+[a-zµ]+$/.test(text)) {
      const left = Math.max(0, e.retryAt - Date.now() / 1000);
      text = text.replace(/ in [0-9.]+[a-zµ]+$/, ` in ${left < 10 ? left.toFixed(1) : Math.round(left)}s`);
    }
    setText(e.detailEl, text);
    e.detailEl.hidden = text === '';
  }
  setInterval(() => { for (const e of watchers.values()) if (e.retryAt) renderDetail(e); }, 500);

  // upsertWatcher applies a watcher's full state, creating its section if
  // new (appended: new watchers come last, as they start last).
  function upsertWatcher(w, fromSnapshot) {
    let e = watchers.get(w.name);
    if (!e) {
      e = createWatcher(w.name);
      watchers.set(w.name, e);
      byId('watchers').append(e.el);
      byId('no-watchers').hidden = true;
    }
    e.el.dataset.state = w.state;
    setText(e.stateEl, w.state);
    e.stateEl.dataset.state = w.state;
    e.detail = w.detail || '';
    e.retryAt = w.retry_at || 0;
    renderDetail(e);
    // By wid, as the contract promises; sorting again costs nothing and
    // keeps rows from jumping should an older server not.
    const workers = (w.workers || []).slice().sort((a, b) => a.wid - b.wid);
    setText(e.countEl, String(workers.length));
    setText(e.targetEl, String(w.numprocesses));
    e.countBox.classList.toggle('short', w.state === 'active' && workers.length < w.numprocesses);
    if (e.cmd !== w.cmd) {
      e.cmd = w.cmd;
      e.cmdEl.textContent = w.cmd || '';
      e.cmdEl.title = w.cmd || '';
    }
    renderSockets(e, w.sockets || []);
    renderScale(e, w.autoscale);
    renderLife(e, w);
    syncRows(e, workers, w.state === 'stopping', !fromSnapshot);
    drawWatcherStats(e);
    if (tail.open && tail.name === w.name) noteTailWorker();
  }

  function renderSockets(e, sockets) {
    const key = JSON.stringify(sockets);
    if (e.sockets === key) return;
    e.sockets = key;
    e.socketsEl.replaceChildren(...sockets.map((s) =>
      h('span', { class: 'sock', title: `socket ${s.name} on ${s.address}` },
        h('span', { class: 'k' }, s.name), ' ', s.address)));
  }

  // renderScale shows an autoscaled watcher's queue gauge, or hides it.
  function renderScale(e, a) {
    e.scaleBox.hidden = !a;
    if (!a) return;
    setText(e.queueEl, String(a.queue));
    e.queueGauge.max = Math.max(a.max, 1);
    e.queueGauge.value = Math.min(a.queue, a.max);
    e.scaleBox.title = `autoscaled within ${a.min}..${a.max} workers: connections waiting in the accept queue ` +
      `(backlog ${a.backlog}), and workers, last 5 minutes`;
    e.countBox.title = `live workers / numprocesses (autoscaled within ${a.min}..${a.max})`;
  }

  function removeWatcher(name) {
    const e = watchers.get(name);
    if (!e) return;
    if (tail.open && tail.name === name) closeTail(false);
    if (chooser.owner && e.el.contains(chooser.owner)) closeChooser(false);
    clearGhosts(e);
    e.el.remove();
    watchers.delete(name);
    seriesW.delete(name);
    seriesS.delete(name);
    byId('no-watchers').hidden = watchers.size > 0;
  }

  // syncRows reconciles a watcher's rows with its workers, keyed by pid.
  //
  // A snapshot (live false) lays the rows out by wid. After that, rows stay
  // where they are, so that nothing moves under the pointer: a worker that
  // leaves turns into a ghost row ("exited", buttons disabled) in its
  // place, a new worker takes the place of the first ghost or else comes
  // last, and ghosts left over go after GHOST_MS, once the pointer is not
  // over the rows that would move (see sweepGhosts).
  //
  // A killed (or reloaded, or too old) worker's replacement starts before
  // it is signalled, while it is still listed as stopping: the replacement
  // comes last then, as the successor of a stopping row, and when that row
  // leaves, the two swap: the replacement takes the old worker's row and
  // the ghost goes last. So a kill leaves every other row where it was.
  //
  // Rows are moved as little as possible so that focus (a button in a row)
  // survives.
  function syncRows(e, workers, watcherStopping, live) {
    const alive = new Set(workers.map((p) => p.pid));
    for (const [pid, row] of e.rows) {
      if (alive.has(pid)) continue;
      if (chooser.owner && row.el.contains(chooser.owner)) closeChooser(false);
      e.rows.delete(pid);
      if (!live) {
        row.el.remove();
        continue;
      }
      const ghost = toGhost(e, row);
      if (row.stopping) takeOver(e, ghost);
    }
    if (!live) clearGhosts(e);
    // The stopping rows that have no successor yet.
    e.successors = e.successors.filter((s) => e.rows.get(s.pid) === s);
    let owed = -e.successors.length;
    if (live) for (const p of workers) if (p.stopping && e.rows.has(p.pid)) owed++;
    let prev = null;
    for (const p of workers) {
      let row = e.rows.get(p.pid);
      if (!row) {
        row = createRow(e.name, p, live);
        e.rows.set(p.pid, row);
        drawRowStats(row);
        if (live) {
          const ghost = firstGhost(e);
          if (ghost) {
            dropGhost(e, ghost);
            ghost.el.replaceWith(row.el);
          } else {
            e.tbody.append(row.el);
            if (owed-- > 0) e.successors.push(row);
          }
        }
      }
      updateRow(row, p);
      if (p.stopping || watcherStopping) expectedExit.add(p.pid);
      if (live) continue;
      const want = prev ? prev.el.nextSibling : e.tbody.firstChild;
      if (row.el !== want) e.tbody.insertBefore(row.el, want);
      prev = row;
    }
    if (e.ghosts.size) scheduleSweep(e);
    e.noWorkers.hidden = e.tbody.childElementCount > 0;
  }

  // ---- ghost rows: workers that exited, kept in place for a while ----------

  const reaps = new Map(); // pid -> {code, bad}: the last reap events, for the ghosts' text
  const ghostByPid = new Map(); // pid -> ghost, to show a reap that comes after the row went
  const heldSweeps = new Set(); // watchers whose ghosts are due but wait for the pointer to go
  const pointer = { in: false, x: 0, y: 0 }; // the mouse's last position in the viewport

  // toGhost turns a live worker's row into the row of an exited worker: it
  // keeps its place and height, loses the hooks of a live worker (data-pid,
  // data-wid: data-exited-pid, data-exited-wid instead) and its buttons
  // stay but do nothing, so that a second click where its kill button was
  // hits nothing rather than another worker. Its tail button alone still
  // works: an exited worker's last lines are kept, and are what matter
  // after a crash.
  function toGhost(e, row) {
    const el = row.el;
    el.removeAttribute('data-pid');
    el.removeAttribute('data-wid');
    el.removeAttribute('data-stopping');
    el.dataset.exitedPid = row.pid;
    el.dataset.exitedWid = row.wid;
    el.classList.remove('stopping', 'new');
    el.classList.add('exited');
    for (const b of el.querySelectorAll('button')) {
      if (b.dataset.action === 'tail') continue;
      b.disabled = true;
      b.removeAttribute('data-action');
      b.removeAttribute('aria-expanded');
      b.removeAttribute('title');
    }
    const ghost = { el, pid: row.pid, markEl: row.markEl, expires: Date.now() + GHOST_MS };
    ghost.markEl.hidden = false;
    e.ghosts.set(el, ghost);
    ghostByPid.set(row.pid, ghost);
    showExit(ghost);
    return ghost;
  }

  // takeOver swaps the row of the watcher's first successor (a worker
  // started while ghost's was stopping) with ghost, so that the
  // replacement sits where the worker it replaces was.
  function takeOver(e, ghost) {
    let s;
    do s = e.successors.shift();
    while (s && e.rows.get(s.pid) !== s);
    if (!s) return;
    const focused = s.el.contains(document.activeElement) ? document.activeElement : null;
    const spot = document.createComment('');
    s.el.replaceWith(spot);
    ghost.el.replaceWith(s.el);
    spot.replaceWith(ghost.el);
    if (focused) focused.focus({ preventScroll: true });
  }

  // showExit writes a ghost's status: exited, and how once its reap came.
  function showExit(ghost) {
    const r = reaps.get(ghost.pid);
    let text = 'exited';
    let title = `pid ${ghost.pid} exited`;
    if (r) {
      text += r.code < 0 ? ` · ${signame(-r.code)}` : ` · code ${r.code}`;
      title += r.code < 0 ? `: killed by ${signame(-r.code)} (exit code ${r.code})` : ` with exit code ${r.code}`;
    }
    ghost.markEl.className = r && r.bad ? 'mark exited bad' : 'mark exited';
    setText(ghost.markEl, text);
    ghost.el.title = title;
  }

  function noteReap(ev, bad) {
    reaps.delete(ev.pid);
    reaps.set(ev.pid, { code: ev.exit_code || 0, bad });
    if (reaps.size > MAX_REAPS) reaps.delete(reaps.keys().next().value);
    const ghost = ghostByPid.get(ev.pid);
    if (ghost) showExit(ghost);
  }

  // firstGhost is the watcher's topmost ghost row.
  function firstGhost(e) {
    for (const el of e.tbody.children) {
      const g = e.ghosts.get(el);
      if (g) return g;
    }
    return null;
  }

  // dropGhost forgets a ghost; the caller removes or replaces its row.
  function dropGhost(e, ghost) {
    e.ghosts.delete(ghost.el);
    if (ghostByPid.get(ghost.pid) === ghost) ghostByPid.delete(ghost.pid);
  }

  function clearGhosts(e) {
    for (const g of e.ghosts.values()) {
      dropGhost(e, g);
      g.el.remove();
    }
    e.successors = [];
    clearTimeout(e.sweepTimer);
    e.sweepTimer = 0;
    heldSweeps.delete(e);
  }

  function scheduleSweep(e) {
    if (heldSweeps.has(e)) return; // swept when the pointer moves
    clearTimeout(e.sweepTimer);
    e.sweepTimer = 0;
    let next = Infinity;
    for (const g of e.ghosts.values()) next = Math.min(next, g.expires);
    if (next !== Infinity) e.sweepTimer = setTimeout(() => sweepGhosts(e), Math.max(0, next - Date.now()) + 20);
  }

  // sweepGhosts removes the ghosts that are due (those due within a second
  // too, so that several go in one step), unless the pointer is where rows
  // would move: over the watcher's table or below it in the watchers'
  // column. Then they wait until the pointer leaves (onPointerMove).
  function sweepGhosts(e) {
    e.sweepTimer = 0;
    if (watchers.get(e.name) !== e) return;
    const soon = Date.now() + 1000;
    const due = [...e.ghosts.values()].filter((g) => g.expires <= soon);
    if (!due.length) {
      heldSweeps.delete(e);
      scheduleSweep(e);
      return;
    }
    if (pointerAbove(e)) {
      heldSweeps.add(e);
      return;
    }
    heldSweeps.delete(e);
    for (const g of due) {
      dropGhost(e, g);
      g.el.remove();
    }
    e.noWorkers.hidden = e.tbody.childElementCount > 0;
    scheduleSweep(e);
  }

  // pointerAbove says whether the mouse is over what removing a row of
  // watcher e would move.
  function pointerAbove(e) {
    if (!pointer.in) return false;
    const col = byId('watchers').getBoundingClientRect();
    if (pointer.x < col.left || pointer.x > col.right) return false;
    return pointer.y >= e.table.getBoundingClientRect().top;
  }

  let recheckQueued = false;
  function onPointerMove(ev) {
    pointer.in = true;
    pointer.x = ev.clientX;
    pointer.y = ev.clientY;
    recheckHeld();
  }

  function onPointerLeave() {
    pointer.in = false;
    recheckHeld();
  }

  // recheckHeld retries the held sweeps, once a frame at most.
  function recheckHeld() {
    if (!heldSweeps.size || recheckQueued) return;
    recheckQueued = true;
    requestAnimationFrame(() => {
      recheckQueued = false;
      for (const e of [...heldSweeps]) sweepGhosts(e);
    });
  }

  function createRow(name, p, flash) {
    const r = { pid: p.pid, wid: null, started: p.started, stopping: null, mark: null, status: null };
    r.widEl = h('td', { class: 'c-wid' });
    // The values that change every second or two sit in boxes of fixed
    // size (.cell, contain: strict), so that a new value relayouts its box
    // and not the table.
    r.ageEl = h('span', { class: 'cell' }, fmtAge(serverNow() - p.started));
    r.cpuEl = h('span', { class: 'cell' }, '–');
    r.rssEl = h('span', { class: 'cell' }, '–');
    r.cpuSpark = spark('cpu');
    r.rssSpark = spark('rss');
    r.markEl = h('span', { class: 'mark' }, 'stopping');
    // What the worker last said of itself (sd_notify STATUS=).
    r.statusEl = h('span', { class: 'status' });
    r.el = h('tr', { 'data-pid': p.pid, 'data-wid': p.wid, class: flash ? 'new' : null },
      r.widEl,
      h('td', { class: 'c-pid' }, String(p.pid)),
      h('td', { class: 'c-age' }, r.ageEl), h('td', { class: 'c-num' }, r.cpuEl), h('td', { class: 'c-spark' }, r.cpuSpark),
      h('td', { class: 'c-num' }, r.rssEl), h('td', { class: 'c-spark' }, r.rssSpark),
      h('td', { class: 'c-mark' }, r.markEl, r.statusEl),
      h('td', { class: 'c-act' }, h('div', { class: 'actions', role: 'group', 'aria-label': `Actions on pid ${p.pid}` },
        button('kill', 'kill', `Kill pid ${p.pid} of ${name}`),
        button('signal', 'sig…', `Send a signal to pid ${p.pid} of ${name}`),
        button('tail', 'tail', `Show the output of pid ${p.pid} of ${name}`))));
    // A worker that arrives live is highlighted by a CSS animation; the
    // class goes afterwards so that moving the row does not replay it.
    if (flash) r.el.addEventListener('animationend', () => r.el.classList.remove('new'), { once: true });
    return r;
  }

  function updateRow(r, p) {
    if (r.wid !== p.wid) {
      r.wid = p.wid;
      r.el.dataset.wid = p.wid;
      r.widEl.textContent = String(p.wid);
    }
    r.started = p.started;
    if (r.stopping !== !!p.stopping) {
      r.stopping = !!p.stopping;
      r.el.classList.toggle('stopping', r.stopping);
      r.el.toggleAttribute('data-stopping', r.stopping);
    }
    // stopping, or starting until the worker is ready (its readiness
    // check, sd_notify READY=1 or warmup): a reload waits for those.
    const mark = r.stopping ? 'stopping' : p.ready === false ? 'starting' : '';
    if (r.mark !== mark) {
      r.mark = mark;
      r.markEl.className = mark === 'starting' ? 'mark starting' : 'mark';
      if (mark) setText(r.markEl, mark);
      r.markEl.hidden = !mark;
    }
    const status = p.status || '';
    if (r.status !== status) {
      r.status = status;
      setText(r.statusEl, status);
      r.statusEl.title = status;
    }
  }

  function tickAges() {
    renderArbiterTicks();
    const now = serverNow();
    for (const e of watchers.values()) {
      for (const r of e.rows.values()) setText(r.ageEl, fmtAge(now - r.started));
      tickLife(e, now);
    }
  }

  // ---- a watcher's life: uptime, restarts, the last exit ------------------

  // createLife makes what renderLife fills: since when the watcher is
  // active, the worker deaths it counted and how the last one went, as
  // supervisorctl's "exited (terminated by SIGKILL; not expected)".
  function createLife(e) {
    e.uptimeEl = h('span', { 'data-role': 'uptime' }, '–');
    e.restartsEl = h('span', { 'data-role': 'restarts' }, '0');
    e.lastExitEl = h('span', { class: 'last-exit', 'data-role': 'last-exit', hidden: true });
    e.lifeBox = h('span', { class: 'metric life' },
      h('span', { class: 'k' }, 'up'), e.uptimeEl,
      h('span', { class: 'k' }, 'restarts'), e.restartsEl, e.lastExitEl);
  }

  function renderLife(e, w) {
    e.since = w.since || 0;
    const r = w.restarts || {};
    const reasons = Object.keys(r).sort();
    setText(e.restartsEl, String(reasons.reduce((n, k) => n + r[k], 0)));
    e.restartsEl.title = reasons.length ? reasons.map((k) => `${k} ${r[k]}`).join(', ') : 'no worker died unasked';
    e.lastExit = w.last_exit || null;
    tickLife(e, serverNow());
  }

  function tickLife(e, now) {
    setText(e.uptimeEl, e.since ? fmtAge(now - e.since) : '–');
    const x = e.lastExit;
    e.lastExitEl.hidden = !x;
    if (!x) return;
    const why = ['exit', 'signal', 'clean'].includes(x.reason) ? [] : [x.reason];
    why.push(x.expected ? 'expected' : 'not expected');
    setText(e.lastExitEl, `last: ${x.signal_name || `exit ${x.code}`} (${why.join('; ')}) ${fmtAge(now - x.time)} ago`);
    e.lastExitEl.title = `pid ${x.pid}, wid ${x.wid}, at ${fmtClock(x.time, false)}`;
    e.lastExitEl.classList.toggle('bad', !x.expected);
  }

  // Clicks on any watcher or worker button land here: one listener rather
  // than one per button, as rows come and go all the time.
  function onWatchersClick(ev) {
    const btn = ev.target.closest('button[data-action]');
    if (!btn) return;
    const section = btn.closest('[data-watcher]');
    if (!section) return;
    const name = section.dataset.watcher;
    const row = btn.closest('[data-pid], [data-exited-pid]');
    const pid = row ? Number(row.dataset.pid || row.dataset.exitedPid) : 0;
    const action = btn.dataset.action;
    // waiting: without it the server answers these at once and runs them on,
    // so the button would not be busy for as long as the work takes, and a
    // failure would only reach the arbiter's log.
    switch (action) {
      case 'incr':
      case 'decr':
        send(action, { name, nb: 1, waiting: true }, btn);
        break;
      case 'start':
      case 'stop':
      case 'restart':
      case 'reload':
        send(action, { name, waiting: true }, btn);
        break;
      case 'kill':
        send('kill', { name, pid, waiting: true }, btn);
        break;
      case 'signal':
        openChooser(btn, name, pid);
        break;
      case 'tail':
        openTail(btn, name, pid);
        break;
    }
  }

  // ---- stats and sparklines ------------------------------------------------------

  const seriesW = new Map(); // watcher name -> {cpu: [], rss: []}
  const seriesS = new Map(); // autoscaled watcher name -> {queue: [], workers: []}
  const seriesP = new Map(); // pid (string) -> {cpu: [], rss: []}

  function spark(kind) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', `spark ${kind}`);
    svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const line = document.createElementNS(SVG_NS, 'polyline');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(line);
    return svg;
  }

  // drawSpark plots values right-aligned, one viewBox unit per sample, so
  // that every sparkline has the same time scale and a young series is
  // short rather than stretched. cpu is drawn from 0 (with a 1% floor so
  // idle noise stays flat). rss is drawn over its own range, so that a leak
  // shows, but over at least a fifth of its maximum, centred, so that a few
  // pages more or less do not look like one.
  function drawSpark(svg, values, kind) {
    const n = values.length;
    let pts = '';
    if (n > 1) {
      let hi = -Infinity;
      let lo = Infinity;
      for (const v of values) {
        if (v > hi) hi = v;
        if (v < lo) lo = v;
      }
      if (kind !== 'rss') {
        lo = 0;
        hi = Math.max(hi, 1);
      } else if (hi - lo < hi * 0.2) {
        const mid = (hi + lo) / 2;
        [lo, hi] = [mid - hi * 0.1, mid + hi * 0.1];
      }
      if (hi <= lo) hi = lo + 1; // all zero: a flat line at the bottom
      const x0 = SPARK_W - (n - 1);
      const parts = new Array(n);
      for (let i = 0; i < n; i++) {
        const y = SPARK_H - 1 - ((values[i] - lo) / (hi - lo)) * (SPARK_H - 2);
        parts[i] = `${x0 + i},${y.toFixed(1)}`;
      }
      pts = parts.join(' ');
    }
    const line = svg.firstChild;
    if (line.getAttribute('points') !== pts) line.setAttribute('points', pts);
  }

  function push(map, key, v) {
    let s = map.get(key);
    if (!s) map.set(key, (s = { cpu: [], rss: [] }));
    s.cpu.push(Number(v.cpu) || 0);
    s.rss.push(Number(v.rss) || 0);
    if (s.cpu.length > MAX_POINTS) {
      s.cpu.shift();
      s.rss.shift();
    }
  }

  function pushScale(name, v) {
    let s = seriesS.get(name);
    if (!s) seriesS.set(name, (s = { queue: [], workers: [] }));
    s.queue.push(Number(v.queue) || 0);
    s.workers.push(Number(v.workers) || 0);
    if (s.queue.length > MAX_POINTS) {
      s.queue.shift();
      s.workers.shift();
    }
  }

  function addSample(sample, live) {
    arbiterStats = sample.arbiter || null;
    for (const [name, v] of Object.entries(sample.watchers || {})) {
      push(seriesW, name, v);
      if (v.queue != null) pushScale(name, v);
    }
    for (const [pid, v] of Object.entries(sample.workers || {})) push(seriesP, pid, v);
    if (!live) return;
    if (sample.time) noteServerTime(sample.time);
    drawAllStats();
    pruneSeries();
  }

  function drawAllStats() {
    renderArbiterTicks();
    for (const e of watchers.values()) {
      drawWatcherStats(e);
      for (const r of e.rows.values()) drawRowStats(r);
    }
  }

  function drawWatcherStats(e) {
    drawStats(e, seriesW.get(e.name));
    if (e.scaleBox.hidden) return;
    const s = seriesS.get(e.name);
    drawSpark(e.queueSpark, s ? s.queue : [], 'queue');
    drawSpark(e.workersSpark, s ? s.workers : [], 'workers');
  }
  const drawRowStats = (r) => drawStats(r, seriesP.get(String(r.pid)));

  // drawStats shows a series' latest values and sparklines in a watcher or
  // a row (both have cpuEl, rssEl, cpuSpark and rssSpark).
  function drawStats(t, s) {
    setText(t.cpuEl, s ? fmtCPU(s.cpu[s.cpu.length - 1]) : '–');
    setText(t.rssEl, s ? fmtBytes(s.rss[s.rss.length - 1]) : '–');
    drawSpark(t.cpuSpark, s ? s.cpu : [], 'cpu');
    drawSpark(t.rssSpark, s ? s.rss : [], 'rss');
  }

  // pruneSeries forgets the history of workers that are gone: pids are
  // many over a day of restarts, and each series holds 300 numbers.
  function pruneSeries() {
    const alive = new Set();
    for (const e of watchers.values()) for (const pid of e.rows.keys()) alive.add(String(pid));
    for (const pid of seriesP.keys()) if (!alive.has(pid)) seriesP.delete(pid);
  }

  // ---- snapshot ------------------------------------------------------------------

  function applySnapshot(s) {
    const before = arbiter;
    arbiter = s.arbiter || {};
    arbiterStats = null;
    // The same pid in another stream is the arbiter re-executed in place,
    // not restarted: say so, from its upgrade event if the snapshot still
    // has it, else from the versions this page saw before and after.
    const sameArbiter = conn.synced && before.pid && before.pid === arbiter.pid && s.stream !== conn.stream;
    const up = (s.events || []).findLast((ev) => ev.kind === 'upgrade');
    if (up) noteUpgrade(version(up.from) || (sameArbiter ? before.version : ''), version(up.to) || arbiter.version, up.time, sameArbiter);
    else if (sameArbiter && before.version !== arbiter.version) noteUpgrade(before.version, arbiter.version, serverNow(), true);
    seriesW.clear();
    seriesS.clear();
    seriesP.clear();
    expectedExit.clear();
    reaps.clear();
    const list = s.watchers || [];
    const names = new Set(list.map((w) => w.name));
    for (const name of [...watchers.keys()]) if (!names.has(name)) removeWatcher(name);
    const stats = s.stats || [];
    for (const sample of stats) addSample(sample, false);
    if (stats.length) noteServerTime(stats[stats.length - 1].time);
    const box = byId('watchers');
    let prev = null;
    for (const w of list) {
      upsertWatcher(w, true);
      // Keep the snapshot's start order, moving only what is out of place.
      const el = watchers.get(w.name).el;
      const want = prev ? prev.nextSibling : box.firstChild;
      if (el !== want) box.insertBefore(el, want);
      prev = el;
    }
    byId('no-watchers').hidden = list.length > 0;
    drawAllStats();
    renderArbiter();
    byId('events').replaceChildren();
    for (const ev of s.events || []) addEvent(ev);
    if (tail.open && !watchers.has(tail.name)) closeTail(false);
  }

  // ---- events --------------------------------------------------------------------

  let eventFilter = '';

  // eventDetail is the short text of what happened: the exit of a reap,
  // the signal of a kill, the hook of a hook_*, the reason of anything else.
  function eventDetail(ev) {
    // A command event is the audit trail: what was asked, by whom, and
    // whether it was refused or failed (the long reason is in the title).
    if (ev.command) return `${ev.command} by ${ev.peer}${ev.status === 'ok' ? '' : ' · ' + ev.status}`;
    const parts = [];
    if (ev.exit_code != null) parts.push(ev.exit_code < 0 ? signame(-ev.exit_code) : `exit ${ev.exit_code}`);
    if (ev.signal) parts.push(signame(ev.signal));
    if (ev.hook) parts.push(ev.hook);
    if (ev.from != null) parts.push(`${ev.from} → ${ev.to}`);
    if (ev.reason) parts.push(ev.reason);
    return parts.join(' · ');
  }

  // eventTitle is the long form, for the tooltip.
  function eventTitle(ev) {
    const parts = [new Date(ev.time * 1000).toString()];
    if (ev.wid) parts.push(`wid ${ev.wid}`);
    if (ev.exit_code != null) {
      parts.push(ev.exit_code < 0 ? `killed by ${signame(-ev.exit_code)} (exit code ${ev.exit_code})` : `exit code ${ev.exit_code}`);
    }
    if (ev.signal) parts.push(`sent ${signame(ev.signal)}`);
    if (ev.reason) parts.push(ev.reason);
    return parts.join('\n');
  }

  // badReap tells a crash from a worker that was asked to go: non-zero exit
  // that is neither a usual stop signal nor the death of a worker we saw
  // being killed or stopped (which covers the KILL after graceful_timeout).
  function badReap(ev) {
    const code = ev.exit_code || 0;
    const expected = expectedExit.has(ev.pid);
    expectedExit.delete(ev.pid);
    if (code === 0 || expected) return false;
    return !(code < 0 && STOP_SIGNALS.has(-code));
  }

  function addEvent(ev) {
    if (!ev) return;
    if (ev.kind === 'kill' && ev.pid) expectedExit.add(ev.pid);
    const bad = ev.kind === 'flapping' || ev.kind === 'upgrade_failed' || (ev.kind === 'reap' && badReap(ev)) ||
      (ev.kind === 'command' && ev.status !== 'ok');
    if (ev.kind === 'reap' && ev.pid) noteReap(ev, bad);
    const detail = eventDetail(ev);
    const li = h('li', {
      class: bad ? 'ev bad' : 'ev',
      title: eventTitle(ev),
      'data-kind': ev.kind,
      'data-pid': ev.pid || null,
      'data-match': `${ev.watcher || 'arbiter'} ${ev.kind}`.toLowerCase(), // what the filter looks at
    },
    h('time', { datetime: new Date(ev.time * 1000).toISOString() }, fmtClock(ev.time)),
    h('span', { class: 'badge' }, ev.kind),
    // The arbiter's own events (reloadconfig, orphan) leave the watcher
    // cell empty, which also gives "reloadconfig" room to overflow into it.
    h('span', { class: 'ev-w' }, ev.watcher || ''),
    h('span', { class: 'ev-pid' }, ev.pid ? String(ev.pid) : ''),
    h('span', { class: 'ev-d' }, detail));
    li.hidden = !matchesFilter(li);
    const list = byId('events');
    list.prepend(li);
    while (list.childElementCount > MAX_EVENTS) list.lastElementChild.remove();
  }

  function matchesFilter(li) {
    return !eventFilter || eventFilter.split(/\s+/).some((t) => li.dataset.match.includes(t));
  }

  function onFilterInput(ev) {
    eventFilter = ev.target.value.trim().toLowerCase();
    for (const li of byId('events').children) li.hidden = !matchesFilter(li);
  }

  // ---- signal chooser --------------------------------------------------------------

  // One chooser, moved next to the signal button that opened it: a select
  // rather than window.prompt, which blocks the page and which headless
  // browsers cannot answer.
  const chooser = { owner: null, name: '', pid: 0 };

  function buildChooser() {
    chooser.select = h('select', { 'aria-label': 'Signal' }, ...SIGNALS.map((s) => h('option', { value: s }, s)));
    chooser.send = h('button', { type: 'submit', class: 'btn primary', 'data-role': 'confirm' }, 'Send');
    const cancel = h('button', { type: 'button', class: 'btn icon', 'aria-label': 'Cancel', title: 'Cancel' }, '×');
    chooser.form = h('form', { class: 'chooser', role: 'group' }, chooser.select, chooser.send, cancel);
    chooser.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const props = { name: chooser.name, signum: chooser.select.value };
      if (chooser.pid) props.pid = chooser.pid;
      send('signal', props, chooser.owner);
      closeChooser(true);
    });
    cancel.addEventListener('click', () => closeChooser(true));
    // Enter on a select does not submit its form by itself.
    chooser.select.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        chooser.form.requestSubmit();
      }
    });
  }

  function openChooser(btn, name, pid) {
    if (chooser.owner === btn) {
      closeChooser(true);
      return;
    }
    closeChooser(false);
    chooser.owner = btn;
    chooser.name = name;
    chooser.pid = pid;
    chooser.form.setAttribute('aria-label', pid ? `Signal for pid ${pid} of ${name}` : `Signal for every worker of ${name}`);
    chooser.send.setAttribute('aria-label', pid ? `Send the signal to pid ${pid}` : `Send the signal to ${name}`);
    btn.setAttribute('aria-expanded', 'true');
    btn.parentElement.append(chooser.form);
    chooser.select.focus();
  }

  function closeChooser(refocus) {
    const btn = chooser.owner;
    if (!btn) return;
    chooser.owner = null;
    btn.setAttribute('aria-expanded', 'false');
    chooser.form.remove();
    if (refocus && btn.isConnected) btn.focus();
  }

  // ---- output tail ------------------------------------------------------------------

  // One panel, placed under the watcher of the worker it follows. gen counts
  // openings so that a reply to a panel since closed or re-aimed is dropped.
  const tail = { open: false, name: '', pid: 0, last: 0, primed: false, inflight: false, timer: 0, gen: 0, opener: null };

  function buildTail() {
    tail.title = h('span', { class: 'tail-title' });
    tail.status = h('span', { class: 'tail-status', role: 'status' });
    tail.log = h('div', { class: 'tail-log', role: 'log', tabindex: '0', 'aria-label': 'Worker output' });
    const close = h('button', { type: 'button', class: 'btn', 'aria-label': 'Close the output panel', title: 'Close (Esc)' }, 'close');
    close.addEventListener('click', () => closeTail(true));
    tail.panel = h('section', { class: 'tail', 'aria-label': 'Worker output' },
      h('div', { class: 'tail-head' }, tail.title, tail.status,
        h('span', { class: 'legend', 'aria-hidden': 'true' }, h('span', { class: 'lg-out' }, 'stdout'), h('span', { class: 'lg-err' }, 'stderr')),
        close),
      tail.log);
    tail.log.addEventListener('scroll', () => {
      tail.follow = atBottom(tail.log);
      noteTailWorker();
    }, { passive: true });
  }

  const atBottom = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 8;

  function openTail(btn, name, pid) {
    if (tail.open && tail.name === name && tail.pid === pid) {
      closeTail(true);
      return;
    }
    closeTail(false);
    const e = watchers.get(name);
    if (!e) return;
    Object.assign(tail, { open: true, name, pid, last: 0, primed: false, inflight: false, follow: true, opener: btn });
    tail.gen++;
    tail.title.replaceChildren('output of ', h('span', { class: 'mono' }, name),
      ...(pid ? [' pid ', h('span', { class: 'mono' }, String(pid))] : [' (every worker)']));
    tail.log.replaceChildren();
    setText(tail.status, 'loading…');
    btn.setAttribute('aria-expanded', 'true');
    e.el.append(tail.panel);
    noteTailWorker();
    tail.panel.scrollIntoView({ block: 'nearest' });
    tailRequest(btn);
  }

  function closeTail(refocus) {
    if (!tail.open) return;
    tail.open = false;
    tail.gen++;
    clearTimeout(tail.timer);
    tail.timer = 0;
    tail.panel.remove();
    const btn = tail.opener;
    tail.opener = null;
    if (btn) {
      btn.setAttribute('aria-expanded', 'false');
      if (refocus && btn.isConnected) btn.focus();
    }
  }

  // tailRequest asks for the last TAIL_LINES lines first, then only the
  // lines after the last seen, once a second, one request at a time.
  function tailRequest(btn) {
    if (!tail.open || tail.inflight) return;
    tail.timer = 0;
    const props = { name: tail.name };
    if (tail.pid) props.pid = tail.pid;
    if (tail.primed) props.since = tail.last;
    else props.lines = TAIL_LINES;
    const gen = tail.gen;
    tail.inflight = true;
    send('tail', props, btn || null, (rep) => {
      if (gen !== tail.gen) return;
      tail.inflight = false;
      if (rep.lost) return; // resumed by markLive
      if (rep.status !== 'ok') {
        // Likely passing (the page's command slots are full): try again
        // later. A removed watcher closes the panel by itself.
        setText(tail.status, `${rep.reason || 'tail failed'}; retrying`);
        tail.timer = setTimeout(tailRequest, TAIL_POLL_MS * 5);
        return;
      }
      tail.primed = true;
      appendTail(rep.lines || []);
      if (typeof rep.last === 'number') tail.last = rep.last;
      noteTailWorker();
      tail.timer = setTimeout(tailRequest, TAIL_POLL_MS);
    });
  }

  function resumeTail() {
    if (tail.open && !tail.inflight && !tail.timer) tailRequest(null);
  }

  function appendTail(lines) {
    if (!lines.length) return;
    const log = tail.log;
    const follow = atBottom(log); // measured before the new lines push the end away
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      const err = l.stream === 'stderr';
      frag.append(h('div', { class: err ? 'ln err' : 'ln' },
        h('span', { class: 'ln-t', 'aria-hidden': 'true' }, fmtClock(l.time, false)),
        tail.pid ? null : h('span', { class: 'ln-p' }, `[${l.pid}]`),
        err ? h('span', { class: 'sr' }, 'stderr: ') : null,
        h('span', { class: 'ln-d' }, l.data)));
    }
    log.append(frag);
    while (log.childElementCount > TAIL_KEEP) log.firstElementChild.remove();
    if (follow) log.scrollTop = log.scrollHeight;
  }

  // noteTailWorker says whether the panel follows the end of the output and
  // whether its worker is still alive (the output of an exited worker
  // stays readable).
  function noteTailWorker() {
    if (!tail.open || !tail.primed) return;
    const e = watchers.get(tail.name);
    const alive = !tail.pid || (e && e.rows.has(tail.pid));
    const parts = [];
    if (!alive) parts.push('worker exited');
    if (!tail.log.childElementCount) parts.push('no output captured yet');
    else if (tail.follow === false) parts.push('paused: scroll to the end to follow');
    else parts.push('following');
    setText(tail.status, parts.join(' · '));
  }

  // ---- keyboard and boot ---------------------------------------------------------------

  function onKeydown(ev) {
    if (ev.key !== 'Escape') return;
    if (chooser.owner) {
      closeChooser(true);
      ev.preventDefault();
    } else if (tail.open) {
      closeTail(true);
      ev.preventDefault();
    }
  }

  // A click elsewhere dismisses the chooser, as a menu would.
  function onPointerDown(ev) {
    onPointerMove(ev);
    if (chooser.owner && !chooser.form.contains(ev.target) && !chooser.owner.contains(ev.target)) closeChooser(false);
  }

  function boot() {
    buildChooser();
    buildTail();
    byId('watchers').addEventListener('click', onWatchersClick);
    byId('reloadconfig').addEventListener('click', (ev) => send('reloadconfig', { waiting: true }, ev.currentTarget));
    byId('event-filter').addEventListener('input', onFilterInput);
    document.addEventListener('keydown', onKeydown);
    document.addEventListener('pointerdown', onPointerDown);
    document.addEventListener('pointermove', onPointerMove, { passive: true });
    document.documentElement.addEventListener('pointerleave', onPointerLeave);
    window.addEventListener('scroll', recheckHeld, { passive: true });
    setInterval(tickAges, 1000);
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
