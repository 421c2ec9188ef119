package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryCommandFlagAfterArgument walks the whole command tree, so that a
// command added later is covered too: for every command, a flag placed after
// an argument is either moved before it (commands that take arguments) or
// the line is refused with the corrected command (commands that take none).
func TestEveryCommandFlagAfterArgument(t *testing.T) {
	var walk func(path []string, cmds []*cli.Command)
	n := 0
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(slices.Clone(path), c.Name)
			if len(c.Subcommands) > 0 {
				walk(p, c.Subcommands)
				continue
			}
			n++
			var flag []string
			for _, f := range c.Flags {
				flag = []string{"--" + f.Names()[0]}
				if takesValue(f) {
					flag = append(flag, "v")
				}
				break
			}
			args := append(append(append([]string{"keyquorum"}, p...), "ARG"), flag...)
			got, err := normalizeArgs(newApp().Commands, args)
			if takesArgs(c) {
				want := append(append(append([]string{"keyquorum"}, p...), flag...), "ARG")
				if err != nil || !slices.Equal(got, want) {
					t.Errorf("%q: got %q, %v; want %q", args, got, err, want)
				}
				continue
			}
			fixed := strings.Join(append(append([]string{"keyquorum"}, p...), flag...), " ")
			if err == nil || !strings.Contains(err.Error(), `unexpected argument "ARG"`) || !strings.Contains(err.Error(), "\n  "+fixed) {
				t.Errorf("%q: got %q, %v; want a refusal printing %q", args, got, err, fixed)
			}
		}
	}
	walk(nil, newApp().Commands)
	if n < 20 {
		t.Fatalf("only %d commands walked", n)
	}
}

func TestNormalizeArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		err  string
	}{
		{args: []string{"kq", "--version"}, want: []string{"kq", "version"}},
		{args: []string{"kq", "help"}, want: []string{"kq", "--help"}},
		{args: []string{"kq", "help", "keygen", "judge"}, want: []string{"kq", "keygen", "judge", "--help"}},
		{args: []string{"kq", "keygen", "help", "judge"}, want: []string{"kq", "keygen", "judge", "--help"}},
		{args: []string{"kq", "warrant", "verify", "w.txt", "--at", "-7d", "--judge=j.pub"}, want: []string{"kq", "warrant", "verify", "--at", "-7d", "--judge=j.pub", "w.txt"}},
		{args: []string{"kq", "warrant", "verify", "--judge", "j", "--", "-odd"}, want: []string{"kq", "warrant", "verify", "--judge", "j", "--", "-odd"}},
		{args: []string{"kq", "warrant", "verify", "-", "--judge", "j"}, want: []string{"kq", "warrant", "verify", "--judge", "j", "-"}},
		{args: []string{"kq", "demo", "--json", "x"}, err: `unexpected argument "x"`},
		{args: []string{"kq", "demo", "x", "--help"}, want: []string{"kq", "demo", "--help"}},
		{args: []string{"kq", "dmeo"}, err: `unknown command "dmeo"; did you mean demo?`},
		{args: []string{"kq", "ceremony", "rotat"}, err: `did you mean ceremony rotate?`},
		{args: []string{"kq", "decrypt", "--captur", "c"}, err: `unknown flag --captur; did you mean --capture?`},
		{args: []string{"kq", "help", "nope"}, err: `unknown help topic "nope"`},
	} {
		got, err := normalizeArgs(newApp().Commands, tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %q, %v; want error %q", tc.args, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"demo", "decrypt", "keygen", "warrant", "ceremony"}
	for typed, want := range map[string]string{"dmeo": "demo", "decrpyt": "decrypt", "keygne": "keygen", "cer": "ceremony", "zzz": "", "warant": "warrant"} {
		if got := suggest(typed, cands); got != want {
			t.Errorf("suggest(%q) = %q, want %q", typed, got, want)
		}
	}
}
