package main

// What `trustee serve` does for the organisation running it, beside the
// API: reload the policy file on SIGHUP, and serve metrics on a listener of
// their own.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func metricsListenFlag() cli.Flag {
	return &cli.StringFlag{
		Name: "metrics-listen",
		Usage: "serve /metrics (Prometheus) on `HOST:PORT` instead of the API's address, over plain HTTP; " +
			"a bare port or :PORT listens on 127.0.0.1 only",
		EnvVars: envVar("metrics-listen"),
	}
}

// reloadPolicy reads the policy file again and puts it in force. A file
// that does not parse or validate is refused, logged with its problems, and
// the policy in force stays.
func reloadPolicy(node *trustee.Node, path string, logger *slog.Logger) {
	b, err := os.ReadFile(path)
	if err == nil {
		var p trustee.Policy
		if p, err = trustee.ParsePolicyFile(b); err == nil {
			err = node.SetPolicy(p)
		}
		if err == nil {
			var judges []string
			for _, j := range p.Judges {
				judges = append(judges, j.Name())
			}
			logger.Info("SIGHUP: policy reloaded", "file", path, "judges", strings.Join(judges, ","), "judges_required", p.JudgesRequired)
			return
		}
	}
	var pe *trustee.PolicyFileError
	if errors.As(err, &pe) {
		pe.File = path
	}
	logger.Error("SIGHUP: policy file refused; the policy in force is unchanged (check it with keyquorum trustee policy check)", "file", path, "err", cleanError(err.Error()))
}

// metricsAddr is --metrics-listen with a bare port bound to loopback.
func metricsAddr(v string) string {
	if !strings.Contains(v, ":") {
		return "127.0.0.1:" + v
	}
	if strings.HasPrefix(v, ":") {
		return "127.0.0.1" + v
	}
	return v
}

// serveMetrics starts the metrics listener when --metrics-listen is given,
// and then takes /metrics off the API's handler. It returns a function
// that stops the listener.
func serveMetrics(c *cli.Context, api *trustee.Server, srv *http.Server, logger *slog.Logger) (func(), error) {
	v := c.String("metrics-listen")
	if v == "" {
		return func() {}, nil
	}
	addr := metricsAddr(v)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("--metrics-listen: listening on %s: %v", addr, err), 1)
	}
	if !isLoopback(addr) {
		logger.Warn("metrics served beyond this machine, without TLS or authentication; keep the port firewalled", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+trustee.PathMetrics, api.Metrics().Handler())
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go ms.Serve(ln)
	apiHandler := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == trustee.PathMetrics {
			http.Error(w, "metrics are served on the node's metrics listener", http.StatusNotFound)
			return
		}
		apiHandler.ServeHTTP(w, r)
	})
	logger.Info("metrics serving", "addr", ln.Addr().String())
	fmt.Fprintf(c.App.Writer, "metrics on http://%s%s\n", ln.Addr().String(), trustee.PathMetrics)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ms.Shutdown(ctx)
	}, nil
}
