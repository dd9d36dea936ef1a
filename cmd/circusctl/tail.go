package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// tailPoll is how often tail --follow asks for new lines: the control
// protocol answers requests and has no stream of its own.
const tailPoll = 250 * time.Millisecond

// tailReply is the reply of Ringmaster's tail command.
type tailReply struct {
	Lines []struct {
		Pid    int    `json:"pid"`
		Stream string `json:"stream"`
		Data   string `json:"data"`
	} `json:"lines"`
	Last int64 `json:"last"`
}

// tail prints the recent output of a watcher, and with --follow what comes
// after, until ctx is done.
func tail(ctx context.Context, g globals, e environ, a *parsed) error {
	endpoint := g.controlEndpoint(e)
	cl, err := control.Dial(endpoint, g.timeout)
	if err != nil {
		return fmt.Errorf("%w (endpoint %s)", err, endpoint)
	}
	defer cl.Close()
	props := map[string]any{"name": a.args[0]}
	n, _ := strconv.Atoi(a.get("lines", "10"))
	props["lines"] = n
	if v, ok := a.set["pid"]; ok {
		pid, _ := strconv.Atoi(v)
		props["pid"] = pid
	}
	if v, ok := a.set["stream"]; ok {
		props["stream"] = v
	}
	follow := a.on("follow")
	poll := time.NewTicker(tailPoll)
	defer poll.Stop()
	for {
		raw, err := pollCall(ctx, g, cl, endpoint, "tail", props)
		if err != nil {
			return err
		}
		if g.json {
			out, err := renderJSON(raw, g.prettify)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, out)
		}
		var r tailReply
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("unexpected reply: %v", err)
		}
		if !g.json {
			for _, l := range r.Lines {
				w := e.stdout
				if l.Stream == "stderr" {
					w = e.stderr
				}
				fmt.Fprintf(w, "[%d] %s\n", l.Pid, l.Data)
			}
		}
		if !follow {
			return nil
		}
		if since, ok := props["since"].(int64); ok && r.Last < since {
			// Fewer lines than we have seen: the arbiter started again
			// and numbers from 1.
			r.Last = 0
		}
		props["since"] = r.Last
		delete(props, "lines")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
}

// countFlag accepts a whole number, 0 or more.
func countFlag(s string) error {
	if n, err := strconv.Atoi(s); err != nil || n < 0 {
		return errors.New("not a whole number (0 or more)")
	}
	return nil
}

// pollCall sends one request of a command that polls (tail, logs) on cl
// within g.timeout. Its error is ctx's once ctx is done (an interrupt
// ends the loop quietly), an error reply as it is, and a failure to reach
// the arbiter naming endpoint.
func pollCall(ctx context.Context, g globals, cl *control.Client, endpoint, command string, props map[string]any) (json.RawMessage, error) {
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	raw, err := cl.Call(cctx, command, props)
	cancel()
	if err == nil {
		return raw, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ce *control.CallError
	if errors.As(err, &ce) {
		return nil, err
	}
	return nil, fmt.Errorf("%w (endpoint %s)", err, endpoint)
}
