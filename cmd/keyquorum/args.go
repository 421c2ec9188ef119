package main

// The argument pre-pass.
//
// urfave/cli v2 (Go's flag package underneath) stops reading flags at the
// first positional argument: in `keyquorum demo X --in-process` the flag is
// silently taken for a second argument, and in `keygen judge X --name a
// --out f` the flags the user typed are reported as "not set". Before the
// application sees the arguments, normalizeArgs finds the command they name
// in the same command tree the application runs, then reads the rest with
// that command's own flag definitions:
//
//   - flags that follow an argument are moved in front of the arguments,
//     which cannot change their meaning because every flag is named;
//   - an argument given to a command that takes none (ArgsUsage empty or
//     blank) is refused, naming the argument and printing the command
//     without it, or, where it follows a flag's value, the command with the
//     value quoted (the forgotten quote in `--case case 2026/118`);
//   - an unknown flag, command or help topic is refused with a suggestion
//     ("did you mean demo?");
//   - `keyquorum help [COMMAND...]` (and `keyquorum COMMAND help SUB`) becomes
//     `keyquorum [COMMAND...] --help`
//     and `keyquorum --version` becomes `keyquorum version`.
//
// Everything after a lone `--` is an argument, as with the flag package.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError is a refusal of the command line itself (exit status 2).
func usageError(format string, a ...any) error {
	return cli.Exit(fmt.Sprintf(format, a...), 2)
}

// normalizeArgs returns args (args[0] is the program) with every flag of the
// named command before its arguments, or an error explaining what to type
// instead. cmds is the application's command tree.
func normalizeArgs(cmds []*cli.Command, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	switch args[1] {
	case "--version", "-version", "-v":
		if len(args) > 2 {
			return nil, usageError("--version takes nothing after it; run: keyquorum version")
		}
		return []string{args[0], "version"}, nil
	}
	if strings.HasPrefix(args[1], "-") {
		return args, nil // the application's own flags (--help): its business
	}
	path, rest, err := resolveCommand(cmds, args[1:], "command")
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 && rest[0] == "help" && (len(path) == 0 || len(path[len(path)-1].Subcommands) > 0) {
		// [COMMAND...] help [COMMAND...] is COMMAND... --help.
		words := append(slices.Clone(args[1:1+len(path)]), rest[1:]...)
		topic, more, err := resolveCommand(cmds, words, "help topic")
		if err != nil {
			return nil, err
		}
		if len(more) > 0 && len(topic) == 0 {
			return []string{args[0], "--help"}, nil // help help
		}
		if len(more) > 0 {
			return nil, usageError("%s has no subcommand %q; run: keyquorum help %s", names(topic), more[0], names(topic))
		}
		return append(append([]string{args[0]}, words...), "--help"), nil
	}
	leaf := path[len(path)-1]
	if len(leaf.Subcommands) > 0 {
		// A command group given only flags (or nothing): the application
		// prints its help or refuses the flag.
		return args, nil
	}
	cmdLen := 1 + len(path)
	flags, pos, err := splitFlags(leaf, path, rest)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(args[:cmdLen])
	out = append(out, flags...)
	if slices.Contains(flags, "--help") || slices.Contains(flags, "-h") || slices.Contains(flags, "-help") {
		return out, nil // help shows the command's help, whatever the arguments
	}
	if len(pos) > 0 {
		if !takesArgs(leaf) {
			return nil, strayArgument(args[:cmdLen], rest, leaf, pos[0])
		}
		if slices.ContainsFunc(pos, func(a string) bool { return strings.HasPrefix(a, "-") && a != "-" }) {
			out = append(out, "--")
		}
		out = append(out, pos...)
	}
	return out, nil
}

// resolveCommand follows words down the command tree as far as they name
// commands. It refuses a word that names no command where one is needed.
func resolveCommand(cmds []*cli.Command, words []string, what string) (path []*cli.Command, rest []string, err error) {
	for i, w := range words {
		if strings.HasPrefix(w, "-") && len(path) > 0 || w == "help" {
			return path, words[i:], nil
		}
		var found *cli.Command
		for _, c := range cmds {
			if c.HasName(w) {
				found = c
				break
			}
		}
		if found == nil {
			if len(path) > 0 && len(path[len(path)-1].Subcommands) == 0 {
				return path, words[i:], nil
			}
			where, msg := "keyquorum", fmt.Sprintf("unknown %s %q", what, w)
			if len(path) > 0 {
				where = "keyquorum " + names(path)
				msg = names(path) + ": " + msg
			}
			if s := suggest(w, commandNames(cmds)); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", strings.TrimPrefix(where+" "+s, "keyquorum "))
			}
			return nil, nil, usageError("%s (run: %s --help)", msg, where)
		}
		path = append(path, found)
		if len(found.Subcommands) == 0 {
			return path, words[i+1:], nil
		}
		cmds = found.Subcommands
	}
	return path, nil, nil
}

// splitFlags separates rest, what follows the command's name, into the
// command's flags (with their values) and its positional arguments. It
// refuses a word that looks like a flag the command does not have.
func splitFlags(leaf *cli.Command, path []*cli.Command, rest []string) (flags, pos []string, err error) {
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name == "help" || name == "h" {
			flags = append(flags, a)
			continue
		}
		f := findFlag(leaf, name)
		if f == nil {
			msg := fmt.Sprintf("%s: unknown flag %s", names(path), strings.SplitN(a, "=", 2)[0])
			if s := suggest(name, flagNames(leaf)); s != "" {
				msg += fmt.Sprintf("; did you mean --%s?", s)
			}
			return nil, nil, usageError("%s (run: keyquorum %s --help)", msg, names(path))
		}
		flags = append(flags, a)
		if takesValue(f) && !hasValue && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	return flags, pos, nil
}

// strayArgument explains an argument given to a command that takes none,
// and prints the command the user probably meant.
func strayArgument(cmd, rest []string, leaf *cli.Command, stray string) error {
	var without []string
	for _, a := range rest {
		if a != stray {
			without = append(without, a)
		}
	}
	msg := fmt.Sprintf("unexpected argument %q: %s takes no arguments", stray, commandLine(cmd, nil))
	// Where the stray word directly follows a flag's value, the value was
	// probably meant to include it: `--case case 2026/118`.
	for i := 2; i < len(rest); i++ {
		if rest[i] != stray || !strings.HasPrefix(rest[i-2], "-") || strings.Contains(rest[i-2], "=") {
			continue
		}
		name := strings.TrimLeft(rest[i-2], "-")
		if f := findFlag(leaf, name); f == nil || !takesValue(f) || namesPath(f) {
			continue
		}
		j := i
		for j < len(rest) && !strings.HasPrefix(rest[j], "-") {
			j++
		}
		fixed := append(slices.Clone(rest[:i-1]), strings.Join(rest[i-1:j], " "))
		fixed = append(fixed, rest[j:]...)
		return usageError("%s.\nIf %q belongs to the value of %s, quote the value:\n  %s\nelse leave it out:\n  %s",
			msg, stray, rest[i-2], commandLine(cmd, fixed), commandLine(cmd, without))
	}
	return usageError("%s. Did you mean:\n  %s", msg, commandLine(cmd, without))
}

// commandLine is the command line of cmd (the program, then command names)
// followed by rest, quoted for a POSIX shell.
func commandLine(cmd, rest []string) string {
	words := append([]string{"keyquorum"}, cmd[1:]...)
	var b strings.Builder
	for i, w := range append(words, rest...) {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(shellQuote(w))
	}
	return b.String()
}

func names(path []*cli.Command) string {
	var s []string
	for _, c := range path {
		s = append(s, c.Name)
	}
	return strings.Join(s, " ")
}

// takesArgs reports whether a command reads positional arguments: by the
// convention of this command tree, one that takes none has an empty or blank
// ArgsUsage.
func takesArgs(c *cli.Command) bool {
	return strings.TrimSpace(c.ArgsUsage) != ""
}

func findFlag(c *cli.Command, name string) cli.Flag {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// namesPath reports whether a flag's value is a file or directory name (by
// its usage text), where a space is rarely part of the value.
func namesPath(f cli.Flag) bool {
	u, ok := f.(interface{ GetUsage() string })
	if !ok {
		return false
	}
	s := strings.ToLower(u.GetUsage())
	return strings.Contains(s, "file") || strings.Contains(s, "dir")
}

func takesValue(f cli.Flag) bool {
	if tv, ok := f.(interface{ TakesValue() bool }); ok {
		return tv.TakesValue()
	}
	return true
}

func commandNames(cmds []*cli.Command) []string {
	var s []string
	for _, c := range cmds {
		if !c.Hidden {
			s = append(s, c.Names()...)
		}
	}
	return s
}

func flagNames(c *cli.Command) []string {
	var s []string
	for _, f := range c.Flags {
		s = append(s, f.Names()...)
	}
	return s
}

// suggest returns the candidate closest to typed, if it is close enough to
// be a typo: at most one edit for short words, two for longer ones (a
// swapped pair of letters counts as one edit).
func suggest(typed string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(typed, c)
		if len(typed) <= 3 && d > 1 {
			continue
		}
		if d < bestD || (d == bestD && best != "" && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" && len(typed) >= 3 {
		// A prefix: "cer" for ceremony.
		for _, c := range candidates {
			if strings.HasPrefix(c, typed) {
				return c
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// letters each cost one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+@,%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
