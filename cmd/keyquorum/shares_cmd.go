package main

import (
	"bufio"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/shares"
	"github.com/urfave/cli/v2"
)

func sharesCommand() *cli.Command {
	return &cli.Command{
		Name:  "shares",
		Usage: "split a file into t-of-n share files, and restore it from any t of them",
		Description: "Dealer-mode secret sharing, for teaching: `split` encrypts a file under a fresh key,\n" +
			"splits the key t-of-n (Shamir, with Feldman commitments) and writes n share files,\n" +
			"each holding one share and a copy of the ciphertext. `combine` checks every share\n" +
			"and every ciphertext chunk before it writes anything. Whoever runs `split` saw the\n" +
			"whole secret: that is the difference from the trustees' dealerless key.",
		Subcommands: []*cli.Command{sharesSplitCommand(), sharesCombineCommand()},
	}
}

func sharesSplitCommand() *cli.Command {
	return &cli.Command{
		Name:      "split",
		Usage:     "encrypt FILE and write n share files to --out DIR, any t of which restore it",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Usage: "number of share files needed to restore the file", EnvVars: envVar("threshold")},
			&cli.IntFlag{Name: "total", Aliases: []string{"n"}, Usage: "number of share files to write (at most 255)", EnvVars: envVar("total")},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "directory for the share files (made if missing)", EnvVars: envVar("out")},
		},
		Action: sharesSplit,
	}
}

func sharesCombineCommand() *cli.Command {
	return &cli.Command{
		Name:      "combine",
		Usage:     "check share files and restore the file they were split from into --out FILE",
		ArgsUsage: "SHARE...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "file to restore to; it must not exist yet", EnvVars: envVar("out")},
		},
		Action: sharesCombine,
	}
}

func sharesSplit(c *cli.Context) error {
	args, err := sharesArgs(c)
	if err != nil || args == nil {
		return err
	}
	const usage = "usage: keyquorum shares split -t 3 -n 5 FILE --out DIR"
	if len(args) != 1 {
		return cli.Exit(fmt.Sprintf("shares split: give exactly one FILE to split (got %d); %s", len(args), usage), 2)
	}
	for _, f := range []string{"threshold", "total", "out"} {
		if !c.IsSet(f) {
			return cli.Exit(fmt.Sprintf("shares split: --%s is required; %s", f, usage), 2)
		}
	}
	t, n, dir := c.Int("threshold"), c.Int("total"), c.String("out")
	if n < 1 || n > shares.MaxShares || t < 1 || t > n {
		return cli.Exit(fmt.Sprintf("shares split: -t %d -n %d: need 1 <= t <= n <= %d", t, n, shares.MaxShares), 2)
	}
	path := args[0]

	in, err := os.Open(path)
	if err != nil {
		return cli.Exit(fmt.Sprintf("shares split: %v", err), 1)
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return cli.Exit(fmt.Sprintf("shares split: %s is not a regular file; split a file, not a directory or a pipe", path), 2)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("shares split: making the output directory: %w", err)
	}
	base := filepath.Base(path)
	names := make([]string, n)
	for i := range names {
		names[i] = filepath.Join(dir, fmt.Sprintf("%s.share-%d-of-%d", base, i+1, n))
		if _, err := os.Lstat(names[i]); err == nil {
			return cli.Exit(fmt.Sprintf("shares split: %s already exists; refusing to overwrite share files: remove them or choose another --out", names[i]), 1)
		}
	}

	// Write every share to a temporary file (O_EXCL, 0600) and publish
	// them only when all are complete.
	temps := make([]*os.File, 0, n)
	defer func() {
		for _, f := range temps {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	outs := make([]io.Writer, n)
	bufs := make([]*bufio.Writer, n)
	for i := range outs {
		f, err := os.CreateTemp(dir, "."+base+".share-*.tmp")
		if err != nil {
			return fmt.Errorf("shares split: %w", err)
		}
		temps = append(temps, f)
		bufs[i] = bufio.NewWriterSize(f, 256<<10)
		outs[i] = bufs[i]
	}
	if err := shares.SplitFile(in, t, n, crand.Reader, outs); err != nil {
		return err
	}
	for i, f := range temps {
		if err := bufs[i].Flush(); err != nil {
			return fmt.Errorf("shares split: writing %s: %w", names[i], err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("shares split: writing %s: %w", names[i], err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("shares split: writing %s: %w", names[i], err)
		}
	}
	for i, f := range temps {
		if err := sharesPublish(f.Name(), names[i]); err != nil {
			for _, done := range names[:i] {
				os.Remove(done)
			}
			return err
		}
	}
	temps = nil

	w := c.App.Writer
	for _, name := range names {
		fmt.Fprintf(w, "wrote %s\n", name)
	}
	fmt.Fprintf(w, "any %d of these %d share files restore %s (keyquorum shares combine SHARE... --out FILE); fewer than %d reveal nothing about its contents, only its size\n",
		t, n, base, t)
	return nil
}

func sharesCombine(c *cli.Context) error {
	args, err := sharesArgs(c)
	if err != nil || args == nil {
		return err
	}
	const usage = "usage: keyquorum shares combine SHARE... --out FILE"
	if len(args) == 0 {
		return cli.Exit("shares combine: give the share files to combine; "+usage, 2)
	}
	if !c.IsSet("out") || c.String("out") == "" {
		return cli.Exit("shares combine: --out is required; "+usage, 2)
	}
	out := c.String("out")
	if _, err := os.Lstat(out); err == nil {
		return cli.Exit(fmt.Sprintf("shares combine: %s already exists; refusing to overwrite it: remove it or choose another --out", out), 1)
	}

	files := make([]*shares.ShareFile, len(args))
	for i, p := range args {
		f, err := os.Open(p)
		if err != nil {
			return cli.Exit(fmt.Sprintf("shares combine: %v", err), 1)
		}
		defer f.Close()
		sf, err := shares.ReadShareFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		files[i] = sf
	}

	// Restore into a temporary file next to the destination; it becomes
	// visible under its name only once everything has been checked.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("shares combine: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	counter := &sharesCounter{w: bw}
	if err := shares.CombineFiles(files, counter); err != nil {
		return sharesNameFiles(err, args, files)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("shares combine: writing %s: %w", out, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("shares combine: writing %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("shares combine: writing %s: %w", out, err)
	}
	if err := sharesPublish(tmp.Name(), out); err != nil {
		return err
	}
	tmp = nil

	h := files[0].Header
	idx := make([]int, len(files))
	for i, f := range files {
		idx[i] = f.Header.Share.Index
	}
	sort.Ints(idx)
	fmt.Fprintf(c.App.Writer, "restored %s (%d bytes) from shares %s of a %d-of-%d split; every share and every chunk checked\n",
		out, counter.n, sharesJoinInts(idx), h.Threshold(), h.Total)
	return nil
}

// sharesNameFiles adds to a combine error the names of the share files it
// is about.
func sharesNameFiles(err error, paths []string, files []*shares.ShareFile) error {
	var ms *shares.MismatchedSplitError
	if errors.As(err, &ms) && ms.Field == "split-id" {
		var order []string
		bySplit := map[string][]string{}
		for i, f := range files {
			id := hex.EncodeToString(f.Header.SplitID[:4])
			if bySplit[id] == nil {
				order = append(order, id)
			}
			bySplit[id] = append(bySplit[id], paths[i])
		}
		var parts []string
		for _, id := range order {
			parts = append(parts, fmt.Sprintf("split %s…: %s", id, strings.Join(bySplit[id], ", ")))
		}
		return fmt.Errorf("%w (%s)", err, strings.Join(parts, "; "))
	}

	indices := map[int]bool{}
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case interface{ ShareIndex() int }:
			indices[x.ShareIndex()] = true
		case *shares.MismatchedSplitError:
			indices[x.Index], indices[x.OtherIndex] = true, true
		}
		switch x := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	var named []string
	for i, f := range files {
		if indices[f.Header.Share.Index] {
			named = append(named, paths[i])
		}
	}
	if len(named) == 0 {
		return err
	}
	return fmt.Errorf("%s: %w", strings.Join(named, ", "), err)
}

// sharesPublish moves the finished temporary file tmp to name without ever
// replacing an existing file: a hard link fails if name exists, where a
// rename would silently overwrite it.
func sharesPublish(tmp, name string) error {
	err := os.Link(tmp, name)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("shares: %s appeared while it was being written; refusing to overwrite it: remove it or choose another --out", name)
	}
	if err != nil {
		// No hard links on this file system: check, then rename.
		if _, statErr := os.Lstat(name); statErr == nil {
			return fmt.Errorf("shares: %s appeared while it was being written; refusing to overwrite it: remove it or choose another --out", name)
		}
		if err := os.Rename(tmp, name); err != nil {
			return fmt.Errorf("shares: %w", err)
		}
	} else {
		os.Remove(tmp) // the file stays under its new name
	}
	// Make the new directory entry durable where the platform allows.
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// sharesArgs returns the positional arguments of c, applying any flags
// that follow them: urfave/cli stops reading flags at the first positional
// argument, and `split FILE --out DIR` is how people type. It returns nil
// and no error when help was asked for and shown.
func sharesArgs(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	pos := []string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			if l := c.Lineage(); len(l) > 1 {
				return nil, cli.ShowCommandHelp(l[1], c.Command.Name)
			}
			return nil, cli.ShowSubcommandHelp(c)
		}
		var flag cli.Flag
		for _, f := range c.Command.Flags {
			for _, n := range f.Names() {
				if n == name {
					flag = f
				}
			}
		}
		if flag == nil {
			return nil, cli.Exit(fmt.Sprintf("shares %s: unknown flag %s; see keyquorum shares %s --help", c.Command.Name, a, c.Command.Name), 2)
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, cli.Exit(fmt.Sprintf("shares %s: flag %s needs a value", c.Command.Name, a), 2)
			}
			i++
			value = args[i]
		}
		for _, n := range flag.Names() {
			if err := c.Set(n, value); err != nil {
				return nil, cli.Exit(fmt.Sprintf("shares %s: flag %s: %v", c.Command.Name, a, err), 2)
			}
		}
	}
	return pos, nil
}

// sharesCounter counts the bytes written through it.
type sharesCounter struct {
	w io.Writer
	n int64
}

func (c *sharesCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sharesJoinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
