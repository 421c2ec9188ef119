package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"go.dedis.ch/kyber/v3"
)

// retentionInterval is how often a serving node applies its retention
// policy to the group file's epochs.
const retentionInterval = time.Minute

func trusteeServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the trustee node's API (HTTPS with the pinned certificate) until SIGTERM or SIGINT; SIGHUP reloads policy.toml",
		Description: "Unlocks DIR/node.db with the passphrase, loads policy.toml and group.json, asks the\n" +
			"other trustees' witnesses for the latest checkpoint of its log they cosigned (and refuses\n" +
			"to serve a log behind it; a restored store must hear from all of them), applies the\n" +
			"retention policy, and serves decryption requests, the audit log, /healthz and /metrics\n" +
			"on the address in the node's descriptor. On SIGTERM it stops accepting, lets requests\n" +
			"in flight finish and closes the store cleanly.",
		Flags: []cli.Flag{
			trusteeDirFlag(),
			&cli.StringFlag{Name: "passphrase-file", Usage: "read the passphrase from `FILE` (else KEYQUORUM_PASSPHRASE, else a prompt)", EnvVars: envVar("passphrase-file")},
			&cli.StringFlag{Name: "listen", Usage: "listen on `HOST:PORT` instead of the descriptor's address", EnvVars: envVar("listen")},
			&cli.BoolFlag{Name: "insecure-plain-http", Usage: "serve plain HTTP without TLS (loopback addresses only; for demos)", EnvVars: envVar("insecure-plain-http")},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json", EnvVars: envVar("log-format")},
			metricsListenFlag(),
			overrideWitnessCheckFlag(),
			witnessWaitFlag(),
		},
		Action: trusteeServe,
	}
}

func trusteeServe(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	dir := c.String("dir")
	var handler slog.Handler
	switch c.String("log-format") {
	case "text":
		handler = slog.NewTextHandler(c.App.ErrWriter, nil)
	case "json":
		handler = slog.NewJSONHandler(c.App.ErrWriter, nil)
	default:
		return cli.Exit("--log-format must be text or json", 2)
	}
	logger := slog.New(handler)

	pass, err := readPassphrase(c)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	store, err := trustee.OpenStore(filepath.Join(dir, nodeStoreFile))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	defer store.Close()
	vault, err := store.Unlock(pass)
	clear(pass)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	defer vault.Close()
	id, err := vault.LoadIdentity()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	policyPath := filepath.Join(dir, policyFile)
	pb, err := os.ReadFile(policyPath)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%v; run keyquorum trustee init first", err), 2)
	}
	policy, err := trustee.ParsePolicyFile(pb)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", policyPath, err), 2)
	}
	groupPath := filepath.Join(dir, groupFileName)
	cur := &servedGroup{}
	gb, err := os.ReadFile(groupPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		gb = nil // no group yet: the node waits for a key ceremony
	case err != nil:
		return cli.Exit(err.Error(), 2)
	}
	index := 0
	if gb != nil {
		g, err := escrow.ReadGroupFile(gb)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", groupPath, err), 2)
		}
		if me := g.Member(id.Name); me != nil {
			index = me.Index
			cur.set(gb, g)
		} else {
			// A reshare moved the group to a roster without this trustee.
			logger.Warn("the group file does not list this trustee: it left the group and holds no share", "group", groupPath)
		}
	}

	// Before anything can sign: is this log behind what its witnesses
	// cosigned (an old backup put back)?
	_, startGroup := cur.get()
	if err := checkWitnessesAtStart(c, store, id, startGroup, logger); err != nil {
		return err
	}

	node, err := trustee.New(id.Name, index, policy, store, id.LogSigner, trustee.WithShareEraser(vault.DeleteEpochShare))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	shares, err := vault.EpochShares()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	for i := range shares {
		s := &shares[i]
		_, g := cur.get()
		if g == nil {
			return cli.Exit(fmt.Sprintf("the store holds a share of epoch %d but %s is missing; restore the group file", s.Epoch, groupPath), 2)
		}
		pub, err := g.PublicShare(s.Epoch, s.Index)
		if err != nil {
			return cli.Exit(fmt.Sprintf("stored share for epoch %d: %v", s.Epoch, err), 2)
		}
		err = node.AddEpochShare(s, pub)
		switch {
		case errors.Is(err, trustee.ErrEpochDestroyed):
			// Logged as destroyed but still stored: a crash came between the
			// two. Finish the erasure now.
			if err := vault.DeleteEpochShare(s.Epoch); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			logger.Warn("erased a share its audit log had already destroyed", "epoch", s.Epoch)
		case err != nil:
			return cli.Exit(err.Error(), 2)
		}
	}
	if _, g := cur.get(); g != nil {
		if err := applyRetention(node, g, logger); err != nil {
			return err
		}
	} else {
		logger.Info("no group file yet: this node waits for a key ceremony (keyquorum ceremony dkg)")
	}
	// witness follows the group file: set once the API exists, and again
	// when a key ceremony installs a new group.
	witness := func(*escrow.GroupFile) {}
	host, err := ceremony.NewCeremonyHost(ceremony.CeremonyHostConfig{
		Name: id.Name, LogSigner: id.LogSigner, Store: vault, Record: node.RecordCeremony,
		Group: func() []byte { b, _ := cur.get(); return b },
		Share: node.Share,
		Install: func(signed []byte, g *escrow.GroupFile, ss []*escrow.EpochShare, replace bool) error {
			pub := map[uint32]kyber.Point{}
			var plain []escrow.EpochShare
			for _, s := range ss {
				p, err := g.PublicShare(s.Epoch, s.Index)
				if err != nil {
					return err
				}
				pub[s.Epoch] = p
				plain = append(plain, *s)
			}
			// The group file first: a share the file does not list would
			// stop the next start.
			if err := replaceStateFile(groupPath, signed, 0o644); err != nil {
				return err
			}
			cur.set(signed, g)
			if replace {
				if err := vault.ReplaceEpochShares(plain); err != nil {
					return err
				}
				if err := node.ReplaceShares(ss, pub); err != nil {
					return err
				}
			} else {
				if err := vault.PutEpochShares(plain); err != nil {
					return err
				}
				for _, s := range ss {
					if err := node.AddEpochShare(s, pub[s.Epoch]); err != nil {
						return err
					}
				}
			}
			logger.Info("key ceremony installed", "epochs", len(g.Epochs), "shares", len(ss), "reshare", replace, "index", node.Index())
			witness(g)
			return applyRetention(node, g, logger)
		},
	})
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if ids, err := host.Pending(); err == nil && len(ids) > 0 {
		logger.Info("key ceremonies in progress resume when their coordinator calls", "ceremonies", ids)
	}

	addr := id.Address
	if l := c.String("listen"); l != "" {
		addr = l
	}
	plain := c.Bool("insecure-plain-http")
	if plain && !isLoopback(addr) {
		return cli.Exit(fmt.Sprintf("--insecure-plain-http is for loopback addresses only, not %s", addr), 2)
	}
	api := trustee.NewServer(node, trustee.WithServerLogger(logger), trustee.WithLogKey(id.LogKey), trustee.WithCeremonyHost(host))
	srv := trustee.NewHTTPServer(api, logger)
	witness = func(g *escrow.GroupFile) { startWitnessing(node, api, g, id, store, logger) }
	if _, g := cur.get(); g != nil {
		witness(g)
	}
	stopMetrics, err := serveMetrics(c, api, srv, logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return cli.Exit(fmt.Sprintf("listening on %s: %v", addr, err), 1)
	}
	if !plain {
		srv.TLSConfig = trustee.ServerTLSConfig(id.TLS)
	}

	// The control socket: the operator's channel (approvals, status),
	// which the public listener does not serve.
	cl, err := trustee.ListenControl(dir)
	if err != nil {
		ln.Close()
		return cli.Exit(err.Error(), 1)
	}
	control := &http.Server{Handler: trustee.ControlHandler(trustee.ControlConfig{
		Host: host, LogSigner: id.LogSigner,
		Status: func() (any, error) {
			_, g := cur.get()
			st, err := node.Status(g, host)
			if err == nil && g != nil && g.Member(id.Name) != nil {
				st.Witness, err = store.WitnessStatus(g, id.Name)
			}
			return st, err
		},
		Backup: func(w io.Writer) error { _, err := trustee.WriteBackup(w, store, dir, id.Name); return err },
		SignGroup: func(b []byte) ([]byte, error) {
			stored, err := vault.EpochShares()
			if err != nil {
				return nil, err
			}
			return trustee.SignGroupAsNode(b, id, stored)
		},
	}), ReadHeaderTimeout: 10 * time.Second}
	go control.Serve(cl)
	defer func() { control.Close(); os.Remove(filepath.Join(dir, trustee.ControlSocketName)) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	errc := make(chan error, 1)
	go func() {
		if plain {
			logger.Warn("SERVING PLAIN HTTP WITHOUT TLS: anyone on this machine can read the traffic; loopback demos only", "addr", ln.Addr().String())
			errc <- srv.Serve(ln)
		} else {
			errc <- srv.ServeTLS(ln, "", "")
		}
	}()
	logger.Info("trustee serving", "name", id.Name, "index", node.Index(), "addr", ln.Addr().String(), "epochs", node.Epochs(), "tls", !plain)
	fmt.Fprintf(c.App.Writer, "%s serving on %s\n", id.Name, ln.Addr().String())

	tick := time.NewTicker(retentionInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serving: %w", err)
		case <-hup:
			reloadPolicy(node, policyPath, logger)
		case <-tick.C:
			_, g := cur.get()
			if g == nil {
				continue
			}
			if err := applyRetention(node, g, logger); err != nil {
				logger.Error("retention", "err", err)
			}
		case <-ctx.Done():
			logger.Info("shutting down: finishing requests in flight")
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := srv.Shutdown(sctx)
			cancel()
			if err != nil {
				return fmt.Errorf("shutting down: %w", err)
			}
			logger.Info("stopped; store closed cleanly")
			return nil
		}
	}
}

// servedGroup is the node's current group file; a key ceremony replaces
// it while the node serves.
type servedGroup struct {
	mu sync.Mutex
	b  []byte
	g  *escrow.GroupFile
}

func (s *servedGroup) get() ([]byte, *escrow.GroupFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b, s.g
}

func (s *servedGroup) set(b []byte, g *escrow.GroupFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b, s.g = b, g
}

// applyRetention destroys the shares of epochs older than the node's
// retention window, counted back from the current epoch: the latest one
// that has started (so a gap between epochs, or time past the last one,
// still counts from the latest started epoch, plus one once it has ended).
func applyRetention(node *trustee.Node, g *escrow.GroupFile, logger *slog.Logger) error {
	cur, ok := currentEpoch(g, time.Now())
	if !ok {
		return nil // before the first epoch: nothing is old yet
	}
	gone, err := node.DestroyEpochsBefore(cur)
	if len(gone) > 0 {
		logger.Info("retention: destroyed epoch shares", "epochs", gone)
	}
	return err
}

// currentEpoch is the number of the latest epoch that started at or
// before now, plus one if that epoch has also ended.
func currentEpoch(g *escrow.GroupFile, now time.Time) (uint32, bool) {
	var cur uint32
	found := false
	for _, e := range g.Epochs {
		if e.ValidFrom.After(now) {
			break
		}
		cur, found = e.Epoch, true
		if !now.Before(e.ValidUntil) {
			cur = e.Epoch + 1
		}
	}
	return cur, found
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && trustee.IsLoopbackHost(host)
}

// startWitnessing makes the node a witness of the other trustees' logs in
// g (its state in the node store) and has it release shares only under
// checkpoints cosigned by w of them. A trustee that cannot reach its
// witnesses refuses with witness-quorum and says so; a group whose
// witnesses cannot be set up at all is logged as an error, and the node's
// answers then lack cosignatures, which requesters refuse.
func startWitnessing(node *trustee.Node, api *trustee.Server, g *escrow.GroupFile, id *trustee.Identity, store *trustee.Store, logger *slog.Logger) {
	if g.Member(id.Name) == nil {
		api.SetWitness(nil)
		node.SetWitnesses(nil)
		return
	}
	cosigner, err := id.WitnessCosigner()
	if err == nil {
		var w *auditlog.Witness
		if w, err = trustee.NewGroupWitness(g, id.Name, cosigner, store.WitnessStore()); err == nil {
			api.SetWitness(w)
		}
	}
	if err != nil {
		logger.Error("witness: not witnessing the other trustees' logs", "err", err)
	}
	clients := make([]*trustee.Client, len(g.Trustees))
	for i, m := range g.Trustees {
		if m.Name == id.Name {
			continue
		}
		if clients[i], err = trustee.NewClient(m); err != nil {
			logger.Error("witness: cannot reach the witness of a trustee", "trustee", m.Name, "err", err)
		}
	}
	ws, err := trustee.NewWitnesses(g, id.Name, clients)
	if err != nil {
		logger.Error("witness: this node's checkpoints cannot be cosigned; requesters will refuse its answers", "err", err)
		node.SetWitnesses(nil)
		return
	}
	node.SetWitnesses(ws)
	logger.Info("witnessing", "witness_quorum", ws.Quorum(), "witnesses", len(g.Trustees)-1)
}
