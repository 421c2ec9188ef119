//go:build !unix

package trustee

// umask does nothing where there is no umask; the socket is chmod-ed
// right after it is made.
func umask(m int) int { return 0 }
