package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"go.dedis.ch/kyber/v3"
)

func groupCommand() *cli.Command {
	return &cli.Command{
		Name:  "group",
		Usage: "set up a trustee group (dealer mode for now)",
		Subcommands: []*cli.Command{{
			Name:      "deal",
			Usage:     "make a group key as a dealer and split it t-of-n with Feldman commitments (the dealer sees the key)",
			ArgsUsage: " ",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Required: true, Usage: "trustees needed to decrypt", EnvVars: envVar("threshold")},
				&cli.IntFlag{Name: "trustees", Aliases: []string{"n"}, Required: true, Usage: "number of trustees", EnvVars: envVar("trustees")},
				&cli.StringFlag{Name: "out", Required: true, Usage: "directory to write group.json and one share file per trustee into (created if missing)", EnvVars: envVar("out")},
				&cli.IntFlag{Name: "epochs", Value: 1, Usage: "number of epoch keys to make", EnvVars: envVar("epochs")},
				&cli.IntFlag{Name: "epoch-days", Value: 30, Usage: "length of each epoch in days", EnvVars: envVar("epoch-days")},
				&cli.StringFlag{Name: "start", Usage: "first epoch's start date (YYYY-MM-DD, default today, UTC)", EnvVars: envVar("start")},
			},
			Action: groupDeal,
		}},
	}
}

func groupDeal(c *cli.Context) error {
	t, n := c.Int("threshold"), c.Int("trustees")
	if n < 1 || n > 255 || t < 1 || t > n {
		return cli.Exit(fmt.Sprintf("need 1 <= threshold <= trustees <= 255, got -t %d -n %d", t, n), 2)
	}
	if c.Int("epochs") < 1 || c.Int("epoch-days") < 1 {
		return cli.Exit("--epochs and --epoch-days must be at least 1", 2)
	}
	start := time.Now().UTC().Truncate(24 * time.Hour)
	if s := c.String("start"); s != "" {
		var err error
		if start, err = time.Parse("2006-01-02", s); err != nil {
			return cli.Exit(fmt.Sprintf("--start %q: use YYYY-MM-DD", s), 2)
		}
	}
	var epochs []trustee.GroupEpoch
	for i := 0; i < c.Int("epochs"); i++ {
		from := start.AddDate(0, 0, i*c.Int("epoch-days"))
		epochs = append(epochs, trustee.GroupEpoch{Epoch: uint32(i + 1), ValidFrom: from, ValidUntil: from.AddDate(0, 0, c.Int("epoch-days"))})
	}
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	g, dealt, err := trustee.Deal(names, t, epochs, rand.Reader)
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
	fmt.Fprintf(out, "\nWARNING: dealer mode. This process drew the group secret itself and held the whole key\n")
	fmt.Fprintf(out, "in memory while splitting it; anyone who copied this machine's memory holds a master key.\n")
	fmt.Fprintf(out, "Every trustee can check its share against group.json, but not that the dealer forgot the key.\n")
	return nil
}
