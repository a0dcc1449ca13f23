package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/vmtest/execchild"
)

// TestGoInstallFromAModuleProxy installs kmatrix as a user does, with
// `go install github.com/kmatrix/kmatrix/matrix/cmd/kmatrix@VERSION`, from a
// file:// module proxy made from this checkout, offline (the dependencies
// come from the module cache, as a second file:// proxy), into an empty
// module cache, and runs the installed binary from outside the checkout:
// `kmatrix version` names the version, `kmatrix exec` boots a kernel.
func TestGoInstallFromAModuleProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("installs kmatrix into an empty module cache and boots a kernel; -short skips it")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the guests are x86-64 Linux; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root := moduleRoot(t)
	goenv := func(key string) string {
		out, err := exec.Command("go", "env", key).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	deps := filepath.Join(goenv("GOMODCACHE"), "cache", "download")

	// Make sure every module of the build list is in the module cache:
	// the install below is offline. (A no-op when the cache is warm.)
	dl := exec.Command("go", "mod", "download")
	dl.Dir = root
	out, err := dl.CombinedOutput()
	require.NoError(t, err, "go mod download: %s", out)

	// The proxy: github.com/kmatrix/kmatrix/@v/{list,V.info,V.mod,V.zip}.
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	require.NoError(t, err)
	version := "v0.0.0-20261201000000-" + strings.TrimSpace(string(head))[:12]
	proxy := t.TempDir()
	at := filepath.Join(proxy, "github.com", "kmatrix", "kmatrix", "@v")
	require.NoError(t, os.MkdirAll(at, 0o755))
	mv := module.Version{Path: "github.com/kmatrix/kmatrix", Version: version}
	zf, err := os.Create(filepath.Join(at, version+".zip"))
	require.NoError(t, err)
	// The checkout as it is, uncommitted changes included, without what
	// git ignores or nested modules (CreateFromDir leaves those out).
	require.NoError(t, modzip.CreateFromDir(zf, mv, root))
	require.NoError(t, zf.Close())
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644))
	info := fmt.Sprintf(`{"Version":%q,"Time":%q}`, version, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339))
	require.NoError(t, os.WriteFile(filepath.Join(at, version+".info"), []byte(info), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(at, "list"), []byte(version+"\n"), 0o644))

	home := t.TempDir()
	gobin := filepath.Join(home, "bin")
	install := exec.Command("go", "install", "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix@"+version)
	install.Dir = home // outside any module
	install.Env = append(os.Environ(),
		"GOPROXY=file://"+proxy+",file://"+deps+",off",
		"GOSUMDB=off", "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local", "GOWORK=off", "CGO_ENABLED=0",
		"GOMODCACHE="+filepath.Join(home, "mod"), "GOBIN="+gobin)
	out, err = install.CombinedOutput()
	require.NoError(t, err, "go install: %s", out)
	bin := filepath.Join(gobin, "kmatrix")

	code, vout := runOutside(t, home, bin, "version")
	require.Equal(t, 0, code, vout)
	assert.True(t, strings.HasPrefix(vout, "kmatrix "+version+"\n"), vout)
	assert.Contains(t, vout, "\nmodule:   github.com/kmatrix/kmatrix "+version+"\n")

	child, err := execchild.Path()
	require.NoError(t, err)
	ks := kernelstest.Default(t)
	code, eout := runOutside(t, home, bin, "exec", "--kernel", ks[0].Name, "--", child, execchild.Spawn)
	assert.Equal(t, 0, code, eout)
	assert.Regexp(t, `^\d+\n$`, eout, "kmatrix-child spawn prints its grandchild's pid")
}
