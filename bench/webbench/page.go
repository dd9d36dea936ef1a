package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// message is what a page reads of the console's messages (see the web
// package's documentation for the whole contract).
type message struct {
	Type     string          `json:"type"`
	Seq      uint64          `json:"seq"`
	Event    *eventJSON      `json:"event"`    // event
	Watcher  *watcherJSON    `json:"watcher"`  // watcher
	Watchers json.RawMessage `json:"watchers"` // snapshot: [W...]; stats: by name
	Arbiter  json.RawMessage `json:"arbiter"`  // snapshot: who; stats: its cpu and rss
	ID       json.RawMessage `json:"id"`       // reply
	Reply    json.RawMessage `json:"reply"`    // reply
}

type eventJSON struct {
	Seq     uint64  `json:"seq"`
	Kind    string  `json:"kind"`
	Watcher string  `json:"watcher"`
	Pid     int     `json:"pid"`
	Time    float64 `json:"time"`
}

type watcherJSON struct {
	Name    string `json:"name"`
	Workers []struct {
		Pid      int  `json:"pid"`
		Stopping bool `json:"stopping"`
	} `json:"workers"`
}

// arrival is one event as one page received it.
type arrival struct {
	seq  uint64    // the event's own (bus) seq
	kind string    // spawn, reap, kill...
	at   time.Time // the arbiter's timestamp
	got  time.Time // when ReadMessage returned it here
}

// page is one WebSocket client, reading continuously on its own
// goroutine, as a browser tab with the console open does. The first page
// of a phase also drives it: it keeps the watchers' pids and sends the
// kills (see driver).
type page struct {
	conn  *websocket.Conn
	wmu   sync.Mutex    // conn's writer: the driver's commands and Close
	ready chan struct{} // closed once the snapshot arrived
	done  chan struct{} // closed when the reader returned

	drv *driver // nil but on the driving page

	mu       sync.Mutex
	events   []arrival
	lastSeq  uint64 // of the stream (message seq), to find gaps
	gaps     int
	messages int
	bytes    int64
	cpu      []float64 // the arbiter's own cpu in each stats message
	err      error     // why the reader stopped, unless Close did it
	closing  bool
}

// dial connects a page to the console at consoleURL (http://host:port/).
func dial(ctx context.Context, consoleURL string, drv *driver) (*page, error) {
	u, err := url.Parse(consoleURL)
	if err != nil {
		return nil, fmt.Errorf("console url %q: %w", consoleURL, err)
	}
	u.Scheme, u.Path = "ws", "/ws"
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 16 << 10}
	conn, _, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	p := &page{conn: conn, ready: make(chan struct{}), done: make(chan struct{}), drv: drv}
	go p.read()
	return p, nil
}

func (p *page) read() {
	defer close(p.done)
	snapshot := false
	for {
		_, data, err := p.conn.ReadMessage()
		got := time.Now()
		if err != nil {
			p.mu.Lock()
			if !p.closing {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					err = fmt.Errorf("closed by the console: %d %s", ce.Code, ce.Text)
				}
				p.err = err
			}
			p.mu.Unlock()
			if !snapshot {
				close(p.ready)
			}
			return
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			p.fail(fmt.Errorf("message %.80q: %w", data, err))
			continue
		}
		p.mu.Lock()
		p.messages++
		p.bytes += int64(len(data))
		if m.Seq != 0 {
			if p.lastSeq != 0 && m.Type != "snapshot" && m.Seq != p.lastSeq+1 {
				p.gaps++
			}
			p.lastSeq = m.Seq
		}
		switch m.Type {
		case "event":
			if m.Event != nil {
				p.events = append(p.events, arrival{seq: m.Event.Seq, kind: m.Event.Kind, at: epochTime(m.Event.Time), got: got})
			}
		case "stats":
			var a struct{ CPU float64 }
			if json.Unmarshal(m.Arbiter, &a) == nil {
				p.cpu = append(p.cpu, a.CPU)
			}
		}
		p.mu.Unlock()
		if p.drv != nil {
			p.drv.observe(&m, got)
		}
		if m.Type == "snapshot" && !snapshot {
			snapshot = true
			close(p.ready)
		}
	}
}

func (p *page) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// Err returns why the page stopped reading or misread a message (nil
// while all is well).
func (p *page) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// send writes one command.
func (p *page) send(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return p.conn.WriteMessage(websocket.TextMessage, b)
}

// seen returns the events the page has received: their seq and arrival.
func (p *page) seen() map[uint64]arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[uint64]arrival, len(p.events))
	for _, a := range p.events {
		m[a.seq] = a
	}
	return m
}

// maxEvent is the highest event seq received.
func (p *page) maxEvent() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s uint64
	for _, a := range p.events {
		s = max(s, a.seq)
	}
	return s
}

// received sums the messages and bytes the pages have read so far.
func received(pages []*page) (messages int, bytes int64) {
	for _, p := range pages {
		p.mu.Lock()
		messages += p.messages
		bytes += p.bytes
		p.mu.Unlock()
	}
	return messages, bytes
}

// Close says goodbye and waits for the reader.
func (p *page) Close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.wmu.Lock()
	_ = p.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	p.wmu.Unlock()
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	p.conn.Close()
	<-p.done
}

func epochTime(sec float64) time.Time {
	return time.UnixMicro(int64(math.Round(sec * 1e6)))
}

// driver is the driving page's bookkeeping: the live workers it may kill
// (from the snapshot and watcher messages, less those it killed), and the
// delays from each kill it sent to its reply and to its effects as that
// page saw them.
type driver struct {
	mu      sync.Mutex
	live    map[string][]int // by watcher: pids not stopping
	killed  map[int]bool     // pids already sent a kill
	pending map[int64]sent   // by command id: kills awaiting their reply
	byPid   map[int]sent     // kills awaiting their reap event
	waiting map[string][]sent
	replies []time.Duration // kill sent → its reply
	toReap  []time.Duration // kill sent → the reap event
	toSpawn []time.Duration // kill sent → the next spawn event of the watcher
	failed  int             // error replies
	reason  string          // the first error reply's
	nextID  int64
}

type sent struct {
	watcher string
	at      time.Time
}

func newDriver() *driver {
	return &driver{
		live: map[string][]int{}, killed: map[int]bool{}, pending: map[int64]sent{},
		byPid: map[int]sent{}, waiting: map[string][]sent{},
	}
}

// observe updates the bookkeeping with one message, received at got.
func (d *driver) observe(m *message, got time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch m.Type {
	case "snapshot":
		var ws []watcherJSON
		if json.Unmarshal(m.Watchers, &ws) == nil {
			for _, w := range ws {
				d.setLocked(w)
			}
		}
	case "watcher":
		if m.Watcher != nil {
			d.setLocked(*m.Watcher)
		}
	case "event":
		e := m.Event
		if e == nil {
			return
		}
		switch e.Kind {
		case "reap":
			if s, ok := d.byPid[e.Pid]; ok {
				delete(d.byPid, e.Pid)
				d.toReap = append(d.toReap, got.Sub(s.at))
			}
		case "spawn":
			if q := d.waiting[e.Watcher]; len(q) > 0 {
				d.toSpawn = append(d.toSpawn, got.Sub(q[0].at))
				d.waiting[e.Watcher] = q[1:]
			}
		}
	case "reply":
		var id int64
		if json.Unmarshal(m.ID, &id) != nil {
			return
		}
		s, ok := d.pending[id]
		if !ok {
			return
		}
		delete(d.pending, id)
		d.replies = append(d.replies, got.Sub(s.at))
		var r struct{ Status, Reason string }
		if json.Unmarshal(m.Reply, &r) == nil && r.Status != "ok" {
			d.failed++
			if d.reason == "" {
				d.reason = r.Reason
			}
		}
	}
}

func (d *driver) setLocked(w watcherJSON) {
	pids := d.live[w.Name][:0]
	for _, p := range w.Workers {
		if !p.Stopping && !d.killed[p.Pid] {
			pids = append(pids, p.Pid)
		}
	}
	d.live[w.Name] = pids
}

// next picks a live worker of watcher and records a kill of it as sent
// now; ok is false when the watcher has none to spare.
func (d *driver) next(watcher string) (id int64, pid int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pids := d.live[watcher]
	if len(pids) == 0 {
		return 0, 0, false
	}
	pid = pids[0]
	d.live[watcher] = slices.Delete(pids, 0, 1)
	d.killed[pid] = true
	d.nextID++
	s := sent{watcher: watcher, at: time.Now()}
	d.pending[d.nextID] = s
	d.byPid[pid] = s
	d.waiting[watcher] = append(d.waiting[watcher], s)
	return d.nextID, pid, true
}

// unsent forgets a kill that could not be written.
func (d *driver) unsent(id int64, pid int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.pending[id]
	delete(d.pending, id)
	delete(d.byPid, pid)
	if q := d.waiting[s.watcher]; len(q) > 0 {
		d.waiting[s.watcher] = q[:len(q)-1]
	}
}
