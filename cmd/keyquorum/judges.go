package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// judgeKeyArg reads a --judge value: a judge verifier key (name+hash+key)
// or the path of a file holding one, as keyquorum keygen judge prints.
// It returns the key string and its parsed verifier.
func judgeKeyArg(arg string) (string, note.Verifier, error) {
	key := arg
	if b, err := os.ReadFile(arg); err == nil {
		key = strings.TrimSpace(string(b))
	} else if !strings.Contains(arg, "+") {
		return "", nil, fmt.Errorf("--judge %s: not a verifier key (name+hash+key), and reading it as a file failed: %v", arg, err)
	}
	v, err := escrow.ParseJudgeVerifier(key)
	if err != nil {
		return "", nil, fmt.Errorf("--judge %s: %w", arg, err)
	}
	return key, v, nil
}
