package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/matrix/guest"
)

const fixture = "../../guest/testdata/programs.o"

func TestRunPrintsDecodableResults(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-program", "socket_pass", "-program", "verifier_reject", fixture}, &stdout, &stderr)
	require.Equal(t, 0, code, "exit 0 even though a program failed; stderr: %s", stderr.String())
	rs, err := guest.Decode(&stdout)
	require.NoError(t, err)
	require.Len(t, rs, 4) // socket_pass load+attach+run, verifier_reject load
	got := map[string]outcome.Outcome{}
	for _, r := range rs {
		got[r.Program+"/"+string(r.Stage)] = r.Outcome
	}
	assert.Equal(t, map[string]outcome.Outcome{
		"socket_pass/load":     outcome.Pass,
		"socket_pass/attach":   outcome.Pass,
		"verifier_reject/load": outcome.LoadError,
		"socket_pass/run":      outcome.Pass,
	}, got)
}

func TestRunBadUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no object", nil, 2, "no BPF object given"},
		{"missing object", []string{"/no/such.o"}, 1, "BPF object /no/such.o: file does not exist"},
		{"stray argument", []string{fixture, "extra"}, 2, `unexpected argument "extra" after the object`},
		{"empty check", []string{fixture, "--"}, 2, `"--" is not followed by a check command`},
		{"bad log lines", []string{"-log-lines", "0", fixture}, 2, "-log-lines 0: want at least 1"},
		{"unknown flag", []string{"-frobnicate", fixture}, 2, "flag provided but not defined: -frobnicate"},
		{"bad attach", []string{"-attach", "uprobe_x", fixture}, 2, `"uprobe_x": want PROGRAM=TARGET`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tc.code, run(tc.args, &stdout, &stderr))
			assert.Contains(t, stderr.String(), tc.want)
			assert.Empty(t, stdout.String(), "nothing but results on stdout")
		})
	}
}
