package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// promptPassphrase writes prompt to w and reads one line from the terminal
// in with echo turned off (golang.org/x/term, so on every platform it
// supports). The terminal's settings are restored afterwards, also when
// the process is interrupted while waiting.
func promptPassphrase(in *os.File, w io.Writer, prompt string) ([]byte, error) {
	fd := int(in.Fd())
	old, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("reading the terminal's settings: %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sigs)
		close(done)
	}()
	go func() {
		select {
		case s := <-sigs:
			// Put echo back, then die of the signal as if unhandled
			// (where a process cannot signal itself, exit as a shell
			// reports an interrupt).
			_ = term.Restore(fd, old)
			fmt.Fprintln(w)
			signal.Reset(s)
			if p, err := os.FindProcess(os.Getpid()); err != nil || p.Signal(s) != nil {
				os.Exit(130)
			}
		case <-done:
		}
	}()

	fmt.Fprint(w, prompt)
	line, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if errors.Is(err, io.EOF) && len(line) == 0 {
		return nil, errors.New("no passphrase typed (end of input)")
	}
	if err != nil {
		clear(line)
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	return line, nil
}
