package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyquorum/keyquorum/internal/demo"
	"github.com/keyquorum/keyquorum/internal/demo/web"
	"github.com/urfave/cli/v2"
)

// serveDemo is `keyquorum demo --web`: it listens, prints the page's URL
// as its first line, starts the demo's trustee processes and keeps them
// running behind the page until SIGINT or SIGTERM, then stops them (the
// caller removes the work directory).
func serveDemo(c *cli.Context, cfg demo.Config, listen string) error {
	if !cfg.Processes || cfg.KeyGeneration != "dkg" {
		return cli.Exit("--web runs the trustees as processes that make their keys by DKG; drop --in-process and --dealer", 2)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := web.New(cfg)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(c.App.Writer, "serving on http://%s/\n", ln.Addr())
	fmt.Fprintf(c.App.ErrWriter, "starting %d trustee processes and the simulated month; the page fills in when they are ready. Ctrl-C stops.\n", cfg.Trustees)

	type opened struct {
		live *demo.Live
		err  error
	}
	ready := make(chan opened, 1)
	go func() {
		l, err := demo.Open(cfg)
		srv.Ready(l, err)
		ready <- opened{l, err}
	}()
	var live *demo.Live
	var runErr error
	select {
	case o := <-ready:
		live, runErr = o.live, o.err
		if runErr == nil {
			fmt.Fprintln(c.App.ErrWriter, "ready.")
			select {
			case <-ctx.Done():
			case runErr = <-served:
			}
		}
	case <-ctx.Done():
		fmt.Fprintln(c.App.ErrWriter, "stopping: waiting for the trustees being set up, to stop them")
		o := <-ready
		live = o.live
	case runErr = <-served:
		o := <-ready
		live = o.live
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if live != nil {
		live.Close()
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	if runErr == nil {
		fmt.Fprintln(c.App.ErrWriter, "stopped the trustees.")
	}
	return runErr
}
