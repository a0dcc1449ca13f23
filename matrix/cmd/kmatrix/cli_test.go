package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelpExitsZeroAndListsCommands(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out, errb bytes.Buffer
		code := dispatchTo(context.Background(), args, &out, &errb)
		assert.Equal(t, 0, code, args)
		assert.Empty(t, errb.String(), "help is not an error: it goes to stdout")
		for _, name := range []string{"run", "exec", "kernels", "fetch", "report", "version"} {
			assert.Contains(t, out.String(), "\n  "+name+" ", "%v lists %s", args, name)
		}
		assert.Contains(t, out.String(), "Run 'kmatrix COMMAND -h'")
	}
}

func TestNoOrUnknownCommandIsAUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, exitUsage, dispatchTo(context.Background(), nil, &out, &errb))
	assert.Contains(t, errb.String(), "usage: kmatrix COMMAND")

	errb.Reset()
	assert.Equal(t, exitUsage, dispatchTo(context.Background(), []string{"rnu"}, &out, &errb))
	assert.Contains(t, errb.String(), `kmatrix: unknown command "rnu": did you mean "run"?`)

	errb.Reset()
	assert.Equal(t, exitUsage, dispatchTo(context.Background(), []string{"frobnicate"}, &out, &errb))
	assert.Contains(t, errb.String(), `kmatrix: unknown command "frobnicate"`)
	assert.NotContains(t, errb.String(), "did you mean", "nothing is near frobnicate")
	assert.Empty(t, out.String())
}

func TestRunHelp(t *testing.T) {
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"-h"}, &out, &errb)
	assert.Equal(t, 0, code)
	assert.Empty(t, errb.String())
	h := out.String()
	assert.True(t, strings.HasPrefix(h, "usage: kmatrix run [flags]\n\nBoots every selected kernel"), h)
	assert.Contains(t, h, "examples:\n  kmatrix run ")
	assert.Contains(t, h, "kmatrix run --bpf probe.o ")
	assert.Contains(t, h, "-kernels names")
}

func TestUnknownFlagSuggestsTheNearest(t *testing.T) {
	for _, c := range []struct {
		cmd  func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int
		args []string
		want string
	}{
		{runM, []string{"--kernel", "debian-sid"}, "kmatrix run: unknown flag --kernel: did you mean --kernels?\n"},
		{runM, []string{"-paralel", "2"}, "kmatrix run: unknown flag --paralel: did you mean --parallel?\n"},
		{runM, []string{"--kmd", "dir"}, "kmatrix run: unknown flag --kmd: did you mean --kmod?\n"},
		{execM, []string{"--kernels", "debian-sid", "--", "true"}, "kmatrix exec: unknown flag --kernels: did you mean --kernel?\n"},
		{execM, []string{"--kernle", "debian-sid", "--", "true"}, "kmatrix exec: unknown flag --kernle: did you mean --kernel?\n"},
		{runM, []string{"--zzzzzz"}, "kmatrix run: unknown flag --zzzzzz\n"},
	} {
		var out, errb bytes.Buffer
		code := c.cmd(context.Background(), c.args, &out, &errb)
		assert.Equal(t, exitUsage, code, c.args)
		assert.True(t, strings.HasPrefix(errb.String(), c.want), "%v: %s", c.args, errb.String())
		assert.Contains(t, errb.String(), "-h' for its flags")
		assert.NotContains(t, errb.String(), "  -timeout", "the error is not buried under the whole flag list")
	}
}

func runM(ctx context.Context, args []string, out, errb *bytes.Buffer) int {
	return runMain(ctx, args, out, errb)
}

func execM(ctx context.Context, args []string, out, errb *bytes.Buffer) int {
	return execMain(ctx, args, nil, out, errb)
}

func TestCheckWithoutPayloadIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"--check", "/bin/true"},
		{"--check", "/bin/true", "--payloads", "bpf"},
		{"--check", "./mycheck --expect 3", "--kernels", "debian-sid"},
	} {
		var out, errb bytes.Buffer
		code := runMain(context.Background(), append(args, "--out", t.TempDir()), &out, &errb)
		assert.Equal(t, exitUsage, code, args)
		assert.Contains(t, errb.String(), "runs in each guest while your payloads are loaded, and none is given: add --bpf FILE.o or --kmod DIR", args)
		assert.Empty(t, out.String(), "nothing ran")
	}
}

func TestNearest(t *testing.T) {
	flags := []string{"kernels", "payloads", "bpf", "kmod", "check", "out", "parallel", "shard", "float", "timeout", "floor", "catalog"}
	for in, want := range map[string]string{
		"kernel": "kernels", "kernals": "kernels", "kern": "kernels", "payload": "payloads",
		"bfp": "bpf", "kmdo": "kmod", "checks": "check", "timout": "timeout", "flor": "floor",
		"x": "", "version": "", "verbose": "",
	} {
		assert.Equal(t, want, nearest(in, flags), in)
	}
	assert.Equal(t, 1, editDistance("rnu", "run"), "a swap of neighbours costs one")
	assert.Equal(t, 3, editDistance("", "run"))
	assert.Equal(t, 0, editDistance("run", "run"))
}

// Every subcommand parses its flags the same way: a misspelt flag is a
// usage error naming the nearest flag of that command.
func TestEverySubcommandSuggestsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"kernels", "--flaot"}, "kmatrix kernels: unknown flag --flaot: did you mean --float?"},
		{[]string{"fetch", "--catlog", "x"}, "kmatrix fetch: unknown flag --catlog: did you mean --catalog?"},
		{[]string{"report", "merge", "--ot", "x"}, "kmatrix report merge: unknown flag --ot: did you mean --out?"},
		{[]string{"report", "diff", "--baselin", "x"}, "kmatrix report diff: unknown flag --baselin: did you mean --baseline?"},
		{[]string{"bisect", "--god", "x"}, "kmatrix bisect: unknown flag --god: did you mean --good?"},
		{[]string{"mirrors", "--json"}, "kmatrix mirrors: unknown flag --json\n"},
		{[]string{"version", "--verbose"}, "kmatrix version: unknown flag --verbose\n"},
	} {
		errb := captureStderr(t, func() {
			assert.Equal(t, exitUsage, dispatch(context.Background(), c.args), c.args)
		})
		assert.Contains(t, errb, c.want, c.args)
	}
}

// captureStderr runs f with os.Stderr going to a file, and returns what f wrote there.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	defer tmp.Close()
	old := os.Stderr
	os.Stderr = tmp
	defer func() { os.Stderr = old }()
	f()
	b, err := os.ReadFile(tmp.Name())
	require.NoError(t, err)
	return string(b)
}
