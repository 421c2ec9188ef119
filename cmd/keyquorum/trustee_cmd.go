package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

// Files in a trustee node's data directory.
const (
	nodeStoreFile  = "node.db"
	policyFile     = "policy.toml"
	descriptorFile = "descriptor.json"
	groupFileName  = "group.json"
)

func trusteeCommand() *cli.Command {
	return &cli.Command{
		Name:  "trustee",
		Usage: "set up, check and run a trustee node (init, import-share, sign-group, policy check, serve, backup, restore)",
		Description: "A trustee node keeps everything in one directory: node.db (its keys, shares and\n" +
			"audit log, secrets encrypted under a passphrase), policy.toml and group.json.",
		Subcommands: []*cli.Command{
			trusteeInitCommand(),
			trusteeImportShareCommand(),
			trusteeSignGroupCommand(),
			trusteePolicyCommand(),
			trusteeServeCommand(),
			trusteeApproveCommand(),
			trusteeStatusCommand(),
			trusteePassphraseCommand(),
			trusteeBackupCommand(),
			trusteeRestoreCommand(),
			trusteeTLSCommand(),
		},
	}
}

// trusteeDirFlag is the --dir flag of the trustee subcommands.
func trusteeDirFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:     "dir",
		Required: true,
		Usage:    "the trustee node's data `DIR` (node.db, policy.toml, group.json)",
		EnvVars:  envVar("dir"),
	}
}

func trusteeNoArgs(c *cli.Context) error {
	if c.Args().Present() {
		return cli.Exit(fmt.Sprintf("%s: unexpected argument %q (flags go before arguments)", c.Command.FullName(), c.Args().First()), 2)
	}
	return nil
}

func trusteeInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "create a trustee node: identity key, audit-log key, TLS certificate, encrypted store and default policy; prints its descriptor",
		ArgsUsage: " ",
		Description: "Creates DIR (mode 0700) holding node.db, policy.toml and descriptor.json, and prints the\n" +
			"descriptor (also in DIR/descriptor.json): give it to the dealer, who passes it to\n" +
			"keyquorum group deal --descriptor. The passphrase encrypts every secret in node.db;\n" +
			"the node cannot start without it.",
		Flags: []cli.Flag{
			trusteeDirFlag(),
			&cli.StringFlag{Name: "name", Required: true, Usage: "the trustee's `NAME` in the group: 1-64 letters, digits or . _ @ -", EnvVars: envVar("name")},
			&cli.StringFlag{Name: "addr", Required: true, Usage: "`HOST:PORT` clients will reach the node's API at; the TLS certificate names HOST", EnvVars: envVar("addr")},
			passphraseFileFlag(),
			&cli.StringSliceFlag{Name: "judge", Usage: "trust this judge: a verifier `KEY` (name+hash+key) or a file holding one, as keyquorum keygen judge prints; repeatable (written to policy.toml)", EnvVars: envVar("judge")},
			&cli.UintFlag{Name: "kdf-memory", Value: uint(trustee.DefaultKDFParams().MemoryKiB / 1024), Usage: "argon2id memory in `MiB` for the passphrase; lower it only for throwaway demo and test nodes", EnvVars: envVar("kdf-memory")},
			&cli.UintFlag{Name: "kdf-passes", Value: uint(trustee.DefaultKDFParams().Time), Usage: "argon2id passes over that memory; lower it only for throwaway demo and test nodes", EnvVars: envVar("kdf-passes")},
		},
		Action: trusteeInit,
	}
}

func trusteeInit(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	dir, name := c.String("dir"), c.String("name")
	if !escrow.ValidTrusteeName(name) {
		return cli.Exit(fmt.Sprintf("trustee name %q: use 1-64 letters, digits or . _ @ -", name), 2)
	}
	storePath := filepath.Join(dir, nodeStoreFile)
	paths := []string{storePath, filepath.Join(dir, policyFile), filepath.Join(dir, descriptorFile)}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return cli.Exit(fmt.Sprintf("%s exists: %s already holds a trustee node; choose another --dir", p, dir), 2)
		}
	}
	// Check the name, address and judges before asking for a passphrase.
	id, err := trustee.GenerateIdentity(name, c.String("addr"), time.Now(), rand.Reader)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	policy, err := policyWithJudges(c.StringSlice("judge"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	pass, err := readNewPassphrase(c)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}

	var created []string
	ok := false
	defer func() {
		if !ok {
			for _, p := range created {
				os.Remove(p)
			}
		}
	}()
	store, err := trustee.CreateStore(storePath)
	if err != nil {
		return err
	}
	created = append(created, storePath)
	err = func() error {
		defer store.Close()
		kdf := trustee.DefaultKDFParams()
		kdf.MemoryKiB, kdf.Time = uint32(min(c.Uint("kdf-memory"), 1<<22))*1024, uint32(min(c.Uint("kdf-passes"), 1<<16))
		vault, err := store.CreateVault(pass, kdf, rand.Reader)
		if err != nil {
			return err
		}
		defer vault.Close()
		return vault.SaveIdentity(id)
	}()
	if err != nil {
		return err
	}
	desc, err := id.Descriptor().Marshal()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{paths[1], policy}, {paths[2], desc}} {
		if err := writePublicFile(f.path, f.data); err != nil {
			return err
		}
		created = append(created, f.path)
	}
	ok = true

	if _, err := c.App.Writer.Write(desc); err != nil {
		return err
	}
	e := c.App.ErrWriter
	fmt.Fprintf(e, "initialised trustee %s in %s (secrets in %s, encrypted under the passphrase)\n", name, dir, storePath)
	if len(c.StringSlice("judge")) == 0 {
		fmt.Fprintf(e, "next: add a judge to %s and check it (keyquorum trustee policy check --dir %s),\n", paths[1], dir)
	} else {
		fmt.Fprintf(e, "next: review %s and check it (keyquorum trustee policy check --dir %s),\n", paths[1], dir)
	}
	fmt.Fprintf(e, "      start the node (keyquorum trustee serve --dir %s) and give %s to whoever\n", dir, paths[2])
	fmt.Fprintf(e, "      runs the key ceremony (keyquorum ceremony roster, then ceremony propose dkg);\n")
	fmt.Fprintf(e, "      approve the proposal you are sent with keyquorum trustee approve --dir %s.\n", dir)
	fmt.Fprintf(e, "      (Dealer mode instead: the dealer seals a share to %s; import it with\n", paths[2])
	fmt.Fprintf(e, "      keyquorum trustee import-share and sign the group file with keyquorum trustee sign-group.)\n")
	return nil
}

func trusteeImportShareCommand() *cli.Command {
	return &cli.Command{
		Name:      "import-share",
		Usage:     "open the sealed share the dealer made for this node, check it against the group file, store it encrypted and copy the group file in",
		ArgsUsage: "SEALEDSHARE",
		Flags: []cli.Flag{
			trusteeDirFlag(),
			&cli.StringFlag{Name: "group", Required: true, Usage: "the group file `FILE` the dealer wrote with the share (unsigned, or already signed by trustees)", EnvVars: envVar("group")},
			passphraseFileFlag(),
		},
		Action: trusteeImportShare,
	}
}

func trusteeImportShare(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("give exactly one sealed share file: keyquorum trustee import-share --dir DIR --group group.json NAME.sealed-share", 2)
	}
	dir, groupPath, sealedPath := c.String("dir"), c.String("group"), c.Args().First()
	gb, err := os.ReadFile(groupPath)
	if err != nil {
		return err
	}
	// The dealer's file is unsigned: the trustees sign it only once each
	// has imported its share (keyquorum trustee sign-group). The share
	// was sealed to the canonical group.json, which the node keeps.
	g, err := escrow.ReadGroupFile(gb)
	if err != nil {
		return fmt.Errorf("%s: %w", groupPath, err)
	}
	groupJSON := canonicalGroup(gb)
	sealed, err := os.ReadFile(sealedPath)
	if err != nil {
		return err
	}
	// A node belongs to one group: refuse another group file before
	// storing anything.
	dest := filepath.Join(dir, groupFileName)
	have, err := os.ReadFile(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case !bytes.Equal(canonicalGroup(have), groupJSON):
		return cli.Exit(fmt.Sprintf("%s holds another group file than %s; this node already belongs to a group", dest, groupPath), 2)
	}

	node, err := unlockNode(c, dir)
	if err != nil {
		return err
	}
	defer node.close()
	id := node.id
	shares, err := trustee.OpenSealedShare(sealed, groupJSON, id)
	if err != nil {
		return fmt.Errorf("%s: %w", sealedPath, err)
	}
	if err := node.vault.PutEpochShares(shares); err != nil {
		return err
	}
	out := c.App.Writer
	var epochs []string
	for _, s := range shares {
		epochs = append(epochs, fmt.Sprint(s.Epoch))
	}
	plural := "s"
	if len(epochs) == 1 {
		plural = ""
	}
	fmt.Fprintf(out, "imported %s's shares of epoch%s %s (trustee %d of %d, threshold %d) into %s, encrypted\n",
		id.Name, plural, strings.Join(epochs, ", "), shares[0].Index, len(g.Trustees), g.Threshold, node.store.Path())
	if have == nil {
		if err := writePublicFile(dest, groupJSON); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", dest)
	}
	fmt.Fprintf(out, "you may now delete %s; the node keeps the share in %s\n", sealedPath, node.store.Path())
	fmt.Fprintf(out, "next: sign the group file (keyquorum trustee sign-group --dir %s --group %s --out FILE); clients accept it once every trustee has\n", dir, groupPath)
	return nil
}

// canonicalGroup returns the group.json inside a group file, signed or
// not, or nil if it does not parse.
func canonicalGroup(b []byte) []byte {
	g, err := escrow.ReadGroupFile(b)
	if err != nil {
		return nil
	}
	canon, err := g.Marshal()
	if err != nil {
		return nil
	}
	return canon
}

// unlockedNode is a trustee node's store, unlocked, and its identity.
type unlockedNode struct {
	store *trustee.Store
	vault *trustee.Vault
	id    *trustee.Identity
}

// unlockNode opens DIR/node.db, unlocks it with the passphrase (read only
// once the store has opened) and loads the node's identity.
func unlockNode(c *cli.Context, dir string) (*unlockedNode, error) {
	store, err := trustee.OpenStore(filepath.Join(dir, nodeStoreFile))
	if err != nil {
		return nil, err
	}
	n := &unlockedNode{store: store}
	pass, err := readPassphrase(c)
	if err == nil {
		n.vault, err = store.Unlock(pass)
		clear(pass)
	}
	if err == nil {
		n.id, err = n.vault.LoadIdentity()
	}
	if err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *unlockedNode) close() {
	if n.vault != nil {
		n.vault.Close()
	}
	n.store.Close()
}

func trusteePolicyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "work with the node's policy file (policy.toml)",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "check DIR/policy.toml: prints OK and a summary, or every problem with its line number",
			ArgsUsage: " ",
			Flags:     []cli.Flag{trusteeDirFlag()},
			Action:    trusteePolicyCheck,
		}},
	}
}

func trusteePolicyCheck(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	path := filepath.Join(c.String("dir"), policyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	p, err := trustee.ParsePolicyFile(b)
	var pe *trustee.PolicyFileError
	if errors.As(err, &pe) {
		pe.File = path
		fmt.Fprintln(c.App.ErrWriter, pe.Error())
		return cli.Exit(fmt.Sprintf("%s: %d problem(s); fix them and run keyquorum trustee policy check again", path, len(pe.Problems)), 1)
	}
	if err != nil {
		return err
	}
	out := c.App.Writer
	var judges []string
	for _, j := range p.Judges {
		judges = append(judges, j.Name())
	}
	sort.Strings(judges)
	fmt.Fprintf(out, "OK: %s\n", path)
	fmt.Fprintf(out, "  judges trusted: %s; signatures required: %d\n", strings.Join(judges, ", "), p.JudgesRequired)
	fmt.Fprintf(out, "  warrants: session window at most %s, validity at most %s, at most %d sessions each\n", policyDuration(p.MaxWindow), policyDuration(p.MaxValidity), p.MaxSessionsPerWarrant)
	if p.RateLimit > 0 {
		fmt.Fprintf(out, "  rate limit: %d granted requests per judge per %s\n", p.RateLimit, policyDuration(p.RatePeriod))
	} else {
		fmt.Fprintf(out, "  rate limit: none\n")
	}
	if p.RetentionEpochs > 0 {
		fmt.Fprintf(out, "  retention: shares of the %d most recent epochs; older ones are destroyed\n", p.RetentionEpochs)
	} else {
		fmt.Fprintf(out, "  retention: every epoch's share is kept\n")
	}
	if p.ProspectiveOnly {
		fmt.Fprintf(out, "  prospective only: sessions that started before a warrant's valid-from are refused\n")
	} else {
		fmt.Fprintf(out, "  prospective only: no (a warrant may reach sessions from before it was issued)\n")
	}
	return nil
}

// policyDuration prints whole hours as "744h (31 days)" and anything else
// as Go does.
func policyDuration(d time.Duration) string {
	if d <= 0 || d%time.Hour != 0 {
		return d.String()
	}
	h := int64(d / time.Hour)
	if h%24 == 0 && h >= 48 {
		return fmt.Sprintf("%dh (%d days)", h, h/24)
	}
	return fmt.Sprintf("%dh", h)
}

// policyWithJudges is the default policy trusting the given judges, each a
// verifier key or a file holding one.
func policyWithJudges(judges []string) ([]byte, error) {
	policy := trustee.MarshalDefaultPolicy()
	if len(judges) == 0 {
		return policy, nil
	}
	var keys []string
	for _, j := range judges {
		key, _, err := judgeKeyArg(j)
		if err != nil {
			return nil, err
		}
		keys = append(keys, strconv.Quote(key))
	}
	const empty = "\njudges = []\n"
	if !bytes.Contains(policy, []byte(empty)) {
		return nil, errors.New("default policy has no empty judges line to fill in")
	}
	return bytes.Replace(policy, []byte(empty), []byte("\njudges = ["+strings.Join(keys, ", ")+"]\n"), 1), nil
}
