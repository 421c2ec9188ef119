//go:build !linux

package trustee

import (
	"fmt"
	"path/filepath"
)

// socketAddr returns the path of the Unix socket name in dir, which must
// fit in sun_path: choose a shorter node directory if it does not.
func socketAddr(dir, name string) (string, func(), error) {
	path := filepath.Join(dir, name)
	if len(path) >= maxSockPath {
		return "", nil, fmt.Errorf("the socket path %s is longer than this system allows for a Unix socket; use a shorter node directory", path)
	}
	return path, func() {}, nil
}
