package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeSecretFile creates path holding data, readable only by its owner
// (mode 0600). It never replaces an existing file.
func writeSecretFile(path string, data []byte) error {
	return writeNewFile(path, data, 0o600)
}

// writePublicFile creates path holding data, readable by everyone (mode
// 0644). It never replaces an existing file.
func writePublicFile(path string, data []byte) error {
	return writeNewFile(path, data, 0o644)
}

// writeNewFile writes data to a fresh temporary file in path's directory
// (created with O_EXCL, mode 0600), sets its mode to perm, syncs it, and
// then links it into place, so that path either does not exist or holds
// all of data, and an existing path, or one that appears meanwhile, is
// never overwritten. On file systems without hard links it falls back to
// a rename after checking that path does not exist.
func writeNewFile(path string, data []byte, perm fs.FileMode) (err error) {
	if path == "" {
		return errors.New("no output file given")
	}
	exists := fmt.Errorf("%s exists; choose another path or remove it", path)
	if _, err := os.Lstat(path); err == nil {
		return exists
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*") // O_RDWR|O_CREATE|O_EXCL, mode 0600
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // after a successful link, removes the extra name only
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("setting mode of %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp = nil

	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return exists
		}
		// No hard links here (some network and FAT file systems): rename,
		// which would replace a file created since the check above.
		if _, serr := os.Lstat(path); serr == nil {
			return exists
		}
		if rerr := os.Rename(tmpName, path); rerr != nil {
			return fmt.Errorf("creating %s: %w", path, rerr)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
