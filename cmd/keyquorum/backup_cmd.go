package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func trusteeBackupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "write a consistent backup of a trustee node, running or stopped, to one file",
		ArgsUsage: " ",
		Description: "A running node writes the backup itself, over its control socket, from one read\n" +
			"transaction while it keeps serving; a stopped node's store is opened directly. The file\n" +
			"holds node.db as at rest (secrets sealed under the passphrase, never in plaintext; keep\n" +
			"it as carefully as node.db), descriptor.json, group.json and policy.toml, under a header\n" +
			"naming the trustee, its log and the checkpoint of the log, and ends with a checksum.\n" +
			"The backup is checked whole before it takes the name FILE.",
		Flags: []cli.Flag{
			trusteeDirFlag(),
			&cli.StringFlag{Name: "out", Required: true, Usage: "write the backup to `FILE` (must not exist)", EnvVars: envVar("out")},
		},
		Action: trusteeBackup,
	}
}

func trusteeBackup(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	dir, out := c.String("dir"), c.String("out")
	if _, err := os.Lstat(out); err == nil {
		return cli.Exit(fmt.Sprintf("%s exists; choose another --out (a backup never overwrites a file)", out), 2)
	}
	scratch := filepath.Dir(out)
	tmp, err := os.CreateTemp(scratch, "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return cli.Exit(fmt.Sprintf("writing the backup: %v", err), 1)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	how := "from the running node"
	err = trustee.NewControlClient(dir).Backup(tmp)
	if errors.Is(err, trustee.ErrControl) {
		// No node answers: back up the stopped node's store directly.
		if _, serr := os.Stat(filepath.Join(dir, nodeStoreFile)); errors.Is(serr, fs.ErrNotExist) {
			return cli.Exit(fmt.Sprintf("%s holds no trustee node (no %s)", dir, nodeStoreFile), 2)
		}
		how = "from the stopped node's store"
		if err = tmp.Truncate(0); err == nil {
			if _, err = tmp.Seek(0, 0); err == nil {
				_, err = trustee.BackupStoppedNode(tmp, dir)
			}
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("backup of %s failed: %v", dir, err), 1)
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	h, err := trustee.VerifyBackup(tmp, scratch)
	if err != nil {
		return cli.Exit(fmt.Sprintf("the backup just written does not check: %v", err), 1)
	}
	if err := tmp.Close(); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if err := os.Link(tmp.Name(), out); err != nil {
		// Link refuses an existing name, as O_EXCL would.
		return cli.Exit(fmt.Sprintf("writing %s: %v", out, err), 1)
	}
	syncDir(scratch)
	fmt.Fprintf(c.App.Writer, "backed up %s %s: audit log of %d records (%s), to %s\n", h.Trustee, how, h.TreeSize, h.Origin, out)
	return nil
}

func trusteeRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "put a node directory back from a backup; the node then checks it with its witnesses before it serves",
		ArgsUsage: " ",
		Description: "Checks the backup whole (checksum, header, every page and audit record of its store),\n" +
			"writes it to a new directory beside DIR and renames it to DIR. It refuses while a node\n" +
			"serves DIR, and refuses a DIR that is not empty unless --force, which keeps the old\n" +
			"directory as DIR.replaced-<time>. The restored store is marked: trustee serve will not\n" +
			"sign or serve from it before the other trustees' witnesses have confirmed that the\n" +
			"backup is not behind what they cosigned of its log (never a fork); an old backup is\n" +
			"refused with the missing record range. Restore the latest backup.",
		Flags: []cli.Flag{
			trusteeDirFlag(),
			&cli.StringFlag{Name: "from", Required: true, Usage: "the backup `FILE` (from keyquorum trustee backup)", EnvVars: envVar("from")},
			&cli.BoolFlag{Name: "force", Usage: "replace a directory that holds a node (kept as DIR.replaced-<time>)", EnvVars: envVar("force")},
		},
		Action: trusteeRestore,
	}
}

func trusteeRestore(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	dir := c.String("dir")
	f, err := os.Open(c.String("from"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	defer f.Close()
	h, err := trustee.RestoreBackup(f, dir, trustee.RestoreOptions{Force: c.Bool("force")})
	switch {
	case errors.Is(err, trustee.ErrRestoreTarget), errors.Is(err, trustee.ErrBadBackup):
		return cli.Exit(err.Error(), 2)
	case err != nil:
		return cli.Exit(err.Error(), 1)
	}
	fmt.Fprintf(c.App.Writer, "restored %s into %s: audit log of %d records\n", h.Trustee, dir, h.TreeSize)
	fmt.Fprintf(c.App.Writer, "start it with keyquorum trustee serve --dir %s: it first asks the other trustees' witnesses for the latest checkpoint of its log, and refuses to serve if this backup is behind it\n", dir)
	return nil
}
