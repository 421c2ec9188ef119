package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"go.dedis.ch/kyber/v3"
)

func groupCommand() *cli.Command {
	return &cli.Command{
		Name:  "group",
		Usage: "dealer mode, for comparison: one process draws the group key and splits it (keyquorum ceremony makes it without a dealer)",
		Description: "With --descriptor (one per trustee, from keyquorum trustee init), each trustee's share is\n" +
			"sealed to its identity key (NAME.sealed-share, for keyquorum trustee import-share) and the\n" +
			"group file records each trustee's address, TLS pin and log key. Without, trustees are named\n" +
			"trustee-1..n and get plaintext share files (NAME.share).\n\n" +
			"Clients (simulate, decrypt, audit) accept a group file only once every trustee has signed it:\n" +
			"after importing its share, each trustee runs keyquorum trustee sign-group, one after another.\n" +
			"A group dealt without descriptors has no trustee log keys, so it cannot be signed or used by clients.",
		Subcommands: []*cli.Command{{
			Name:      "deal",
			Usage:     "make a group key as a dealer and split it t-of-n with Feldman commitments (the dealer sees the key)",
			ArgsUsage: " ",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Required: true, Usage: "trustees needed to decrypt", EnvVars: envVar("threshold")},
				&cli.IntFlag{Name: "trustees", Aliases: []string{"n"}, Usage: "number of trustees (with --descriptor: optional, must match their number)", EnvVars: envVar("trustees")},
				&cli.StringSliceFlag{Name: "descriptor", Usage: "a trustee's descriptor `FILE` from keyquorum trustee init; repeat once per trustee, in roster order", EnvVars: envVar("descriptor")},
				&cli.StringFlag{Name: "out", Required: true, Usage: "directory to write group.json and one share file per trustee into (created if missing)", EnvVars: envVar("out")},
				&cli.IntFlag{Name: "epochs", Value: 1, Usage: "number of epoch keys to make", EnvVars: envVar("epochs")},
				&cli.IntFlag{Name: "epoch-days", Value: 30, Usage: "length of each epoch in days", EnvVars: envVar("epoch-days")},
				&cli.StringFlag{Name: "start", Usage: "first epoch's start (YYYY-MM-DD, today, or days from today like -30d; default today, UTC)", EnvVars: envVar("start")},
			},
			Action: groupDeal,
		}, groupApplyPinUpdateCommand()},
	}
}

func groupDeal(c *cli.Context) error {
	t, n := c.Int("threshold"), c.Int("trustees")
	descPaths := c.StringSlice("descriptor")
	switch {
	case len(descPaths) == 0 && !c.IsSet("trustees"):
		return cli.Exit("give the number of trustees (-n) or one --descriptor per trustee", 2)
	case len(descPaths) > 0 && c.IsSet("trustees") && n != len(descPaths):
		return cli.Exit(fmt.Sprintf("-n %d but %d descriptors given; give one --descriptor per trustee", n, len(descPaths)), 2)
	case len(descPaths) > 0:
		n = len(descPaths)
	}
	if n < 1 || n > 255 || t < 1 || t > n {
		return cli.Exit(fmt.Sprintf("need 1 <= threshold <= trustees <= 255, got -t %d -n %d", t, n), 2)
	}
	if c.Int("epochs") < 1 || c.Int("epoch-days") < 1 {
		return cli.Exit("--epochs and --epoch-days must be at least 1", 2)
	}
	start := time.Now().UTC().Truncate(24 * time.Hour)
	if s := c.String("start"); s != "" {
		var err error
		if start, err = parseTimeFlag("start", s); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	var epochs []escrow.GroupEpoch
	for i := 0; i < c.Int("epochs"); i++ {
		from := start.AddDate(0, 0, i*c.Int("epoch-days"))
		epochs = append(epochs, escrow.GroupEpoch{Epoch: uint32(i + 1), ValidFrom: from, ValidUntil: from.AddDate(0, 0, c.Int("epoch-days"))})
	}
	if len(descPaths) > 0 {
		return groupDealSealed(c, descPaths, t, epochs)
	}
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	g, dealt, err := escrow.Deal(names, t, epochs, rand.Reader)
	if err != nil {
		return err
	}
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	// Refuse up front if any output exists, so a failure leaves nothing half-written.
	paths := []string{filepath.Join(dir, "group.json")}
	for _, m := range g.Trustees {
		paths = append(paths, filepath.Join(dir, m.Name+".share"))
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return cli.Exit(fmt.Sprintf("%s exists; choose another --out directory or remove it", p), 2)
		}
	}
	gb, err := g.Marshal()
	if err != nil {
		return err
	}
	if err := writePublicFile(paths[0], gb); err != nil {
		return err
	}
	out := c.App.Writer
	fmt.Fprintf(out, "wrote %s (public: roster, threshold %d, %d epoch key(s) with Feldman commitments)\n", paths[0], t, len(epochs))
	fmt.Fprintf(out, "note: its roster has no trustee nodes (no log keys), so no trustee can sign it and clients\n")
	fmt.Fprintf(out, "(simulate, decrypt, audit) refuse it; for a group they accept, deal to the trustees' descriptors\n")
	fmt.Fprintf(out, "(--descriptor) and have each trustee sign the group file (keyquorum trustee sign-group)\n")
	for i, m := range g.Trustees {
		sf := &trustee.ShareFile{Index: m.Index, Name: m.Name, Threshold: t, Shares: map[uint32]kyber.Scalar{}}
		for _, d := range dealt {
			if d.Trustee.Index == m.Index {
				sf.Shares[d.Epoch] = d.Share.Value
			}
		}
		b, err := sf.Marshal()
		if err != nil {
			return err
		}
		if err := writeSecretFile(paths[i+1], b); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (secret: give it to %s only)\n", paths[i+1], m.Name)
	}
	dealerWarning(out)
	return nil
}

func dealerWarning(out io.Writer) {
	fmt.Fprintf(out, "\nWARNING: dealer mode. This process drew the group secret itself and held the whole key\n")
	fmt.Fprintf(out, "in memory while splitting it; anyone who copied this machine's memory holds a master key.\n")
	fmt.Fprintf(out, "Every trustee can check its share against group.json, but not that the dealer forgot the key.\n")
}

// groupDealSealed deals to trustees that ran trustee init: the roster comes
// from their descriptors and each share is sealed to its trustee.
func groupDealSealed(c *cli.Context, descPaths []string, t int, epochs []escrow.GroupEpoch) error {
	var ds []trustee.Descriptor
	for _, p := range descPaths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		d, err := trustee.ParseDescriptor(b)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", p, err), 2)
		}
		ds = append(ds, d)
	}
	dir := c.String("out")
	// Refuse up front if any output exists, so a failure leaves nothing half-written.
	paths := []string{filepath.Join(dir, "group.json")}
	for _, d := range ds {
		paths = append(paths, filepath.Join(dir, d.Name+".sealed-share"))
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return cli.Exit(fmt.Sprintf("%s exists; choose another --out directory or remove it", p), 2)
		}
	}
	groupJSON, sealed, err := trustee.DealSealed(ds, t, epochs, rand.Reader)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := writePublicFile(paths[0], groupJSON); err != nil {
		return err
	}
	out := c.App.Writer
	fmt.Fprintf(out, "wrote %s (public: roster of %d with addresses, TLS pins and log keys, threshold %d, %d epoch key(s))\n", paths[0], len(ds), t, len(epochs))
	for i, s := range sealed {
		b, err := s.Marshal()
		if err != nil {
			return err
		}
		if err := writeSecretFile(paths[i+1], b); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (sealed to %s's identity key: only its node can open it)\n", paths[i+1], s.Name)
	}
	fmt.Fprintf(out, "\nSend each trustee group.json and its sealed share; it runs\n")
	fmt.Fprintf(out, "  keyquorum trustee import-share --dir DIR --group group.json NAME.sealed-share\n")
	fmt.Fprintf(out, "Clients (simulate, decrypt, audit) refuse the group file until every trustee has signed it.\n")
	fmt.Fprintf(out, "Once they have imported their shares, the trustees sign it one after another:\n")
	fmt.Fprintf(out, "  keyquorum trustee sign-group --dir DIR --group group.json --out group.signed   (the first)\n")
	fmt.Fprintf(out, "  keyquorum trustee sign-group --dir DIR --group group.signed --out group.signed (each next)\n")
	fmt.Fprintf(out, "and group.signed, signed by all, is the group file to publish to clients.\n")
	dealerWarning(out)
	return nil
}
