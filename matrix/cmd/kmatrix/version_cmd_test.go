package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVersionOfABuiltBinary builds kmatrix as a user would in a checkout
// and checks that `kmatrix version` names the commit it was built from.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kmatrix; -short skips it")
	}
	root := moduleRoot(t)
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		require.NoError(t, err, "git %v", args)
		return strings.TrimSpace(string(out))
	}
	head := git("rev-parse", "HEAD")
	dirty := git("status", "--porcelain", "--untracked-files=no") != ""

	build := func(vcs string) string {
		bin := filepath.Join(t.TempDir(), "kmatrix")
		// -buildvcs explicitly: the environment may set GOFLAGS=-buildvcs=false.
		cmd := exec.Command("go", "build", "-buildvcs="+vcs, "-o", bin, "./matrix/cmd/kmatrix")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = exec.Command(bin, "version").CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}

	out := build("true")
	// Go stamps a checkout's build with a pseudo-version holding the
	// commit: v0.0.0-20261201211608-cb9948e78c21(+dirty).
	first := strings.SplitN(out, "\n", 2)[0]
	assert.Regexp(t, `^kmatrix v\d+\.\d+\.\d+-\S*`+regexp.QuoteMeta(head[:12])+`(\+dirty)?$`, first)
	assert.Equal(t, dirty, strings.HasSuffix(first, "+dirty"), first)
	assert.Contains(t, out, "\nmodule:   github.com/kmatrix/kmatrix v")
	mod := ""
	if dirty {
		mod = " (modified: uncommitted changes)"
	}
	assert.Contains(t, out, "\nrevision: "+head+mod+"\n")
	assert.Regexp(t, `\ngo:       go1\.\d+\S* linux/amd64\n`, out)

	// Without VCS stamping the version says so rather than invent one.
	out = build("false")
	assert.True(t, strings.HasPrefix(out, "kmatrix (devel)\n"), out)
	assert.NotContains(t, out, "revision:")
}

func TestVersionUsage(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, versionMain([]string{"-h"}, &out, &errb))
	assert.Contains(t, out.String(), "usage: kmatrix version")
	assert.Equal(t, exitUsage, versionMain([]string{"extra"}, &out, &errb))
	assert.Contains(t, errb.String(), `kmatrix version: unexpected argument "extra"`)
	// --version is the same command.
	out.Reset()
	assert.Equal(t, 0, dispatchTo(context.Background(), []string{"--version"}, &out, &errb))
	assert.True(t, strings.HasPrefix(out.String(), "kmatrix "), out.String())
}
