package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// floor is the bare launcher Ringmaster is measured against: it binds one
// socket and fork/execs the workers with os/exec, the listener as their only
// ExtraFiles (fd 3), and replaces a worker as soon as its cmd.Wait returns.
// Each worker slot has a goroutine that waits for its current child and
// starts the next one; nothing else is done for a child.
//
// It must never run while an Arbiter runs in this process: the Arbiter's
// wait4(-1) would take the floor's children away from cmd.Wait.
type floor struct {
	bin  string
	env  []string
	ln   *net.TCPListener
	file *os.File // ln's fd, handed to every worker

	ctx    context.Context // cancelled by Close: kills the workers
	cancel context.CancelFunc
	wg     sync.WaitGroup // the slot goroutines
	errc   chan error     // the first failed respawn
}

// newFloor binds 127.0.0.1:0 for workers of bin started with env.
func newFloor(bin string, env []string) (*floor, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor: bind: %w", err)
	}
	ln := l.(*net.TCPListener)
	file, err := ln.File()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("floor: listener file: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &floor{bin: bin, env: env, ln: ln, file: file, ctx: ctx, cancel: cancel, errc: make(chan error, 1)}, nil
}

// Addr is the address the workers serve on.
func (f *floor) Addr() string { return f.ln.Addr().String() }

// spawn starts one worker.
func (f *floor) spawn() (*exec.Cmd, error) {
	cmd := exec.CommandContext(f.ctx, f.bin, "--fd", "3")
	cmd.Env = f.env
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{f.file}
	// Only so that no worker outlives a killed benchmark; it costs one
	// prctl in the child. No thread that forks here ever exits early.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("floor: start %s: %w", f.bin, err)
	}
	return cmd, nil
}

// Start starts n workers one after another, as a minimal launcher would.
func (f *floor) Start(n int) error {
	for range n {
		cmd, err := f.spawn()
		if err != nil {
			return err
		}
		f.wg.Go(func() { f.slot(cmd) })
	}
	return nil
}

// slot waits for its worker and replaces it at once, until Close.
func (f *floor) slot(cmd *exec.Cmd) {
	for {
		_ = cmd.Wait() // a killed worker is what we expect
		if f.ctx.Err() != nil {
			return
		}
		var err error
		if cmd, err = f.spawn(); err != nil {
			select {
			case f.errc <- err:
			default:
			}
			return
		}
	}
}

// Err returns the first failed respawn, if any.
func (f *floor) Err() error {
	select {
	case err := <-f.errc:
		return err
	default:
		return nil
	}
}

// Close kills every worker, waits for them and closes the socket.
func (f *floor) Close() error {
	f.cancel()
	f.wg.Wait()
	return errors.Join(f.file.Close(), f.ln.Close())
}
