//go:build linux

package trustee

import (
	"fmt"
	"path/filepath"
	"syscall"
)

// socketAddr returns an address for the Unix socket name in dir that fits
// in sun_path (108 bytes): the path itself when it is short, else the
// same file through /proc/self/fd of an open handle on dir. done closes
// the handle once the socket is bound or connected.
func socketAddr(dir, name string) (addr string, done func(), err error) {
	path := filepath.Join(dir, name)
	if len(path) < maxSockPath {
		return path, func() {}, nil
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, name), func() { syscall.Close(fd) }, nil
}
