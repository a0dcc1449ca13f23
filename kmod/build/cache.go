package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
)

// cacheVersion changes when what a cached build means changes, so old
// entries are ignored rather than trusted (v2: a tool missing from the
// host is no longer a build error, and first errors name tool errors; v3:
// the key holds the headers tree's identity and the build environment;
// v4: the key names the target machine, and a pass means the .ko was
// checked to be of that machine and release).
const cacheVersion = "kmatrix-kmod-build-v4"

// Cached is Module with a content-addressed cache of results under
// <CacheDir>/modules: a module whose source, kernel (image SHA-256, release,
// compiler), headers tree (its content's identity), build environment (the
// host tools' versions, or the build root's installed packages) and make
// arguments are unchanged is not compiled again. Passes and build errors
// are cached (both are deterministic); infra errors and timeouts are not.
// A warm matrix run thus spends no time in make, and a repaired headers
// tree or an upgraded compiler never returns a stale result.
func Cached(ctx context.Context, k *kernels.Kernel, srcDir string, opts Options) (*Result, error) {
	if k == nil {
		return Module(ctx, k, srcDir, opts)
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		var err error
		if cacheDir, err = kernels.CacheDir(); err != nil {
			return nil, err
		}
	}
	key, err := buildKey(k, srcDir, opts.MakeArgs, buildEnv(k, cacheDir, opts))
	if err != nil {
		return Module(ctx, k, srcDir, opts) // Module reports the bad source dir
	}
	entry := filepath.Join(cacheDir, "modules", key)
	unlock, err := kernels.LockFile(entry + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if res, ok := readCached(entry); ok {
		return res, nil
	}
	res, err := Module(ctx, k, srcDir, opts)
	if err != nil || (res.Outcome != outcome.Pass && res.Outcome != outcome.BuildError) {
		return res, err
	}
	if res.BuildRootCreated {
		// The key named a build root that did not exist yet; store the
		// result under the root it was built in.
		if k2, err := buildKey(k, srcDir, opts.MakeArgs, buildEnv(k, cacheDir, opts)); err == nil {
			entry = filepath.Join(cacheDir, "modules", k2)
		}
	}
	if err := writeCached(entry, res); err != nil {
		// A cache that cannot be written costs speed, not correctness.
		fmt.Fprintf(os.Stderr, "kmod/build: not caching the build for %s: %v\n", k.Name, err)
	}
	return res, nil
}

func buildKey(k *kernels.Kernel, srcDir string, makeArgs []string, env string) (string, error) {
	h := sha256.New()
	// The target machine is named even though the kernel's SHA-256 implies
	// it: an amd64 and an arm64 build must never share an entry.
	tg, _ := TargetOf(k)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00arch=%s\x00", cacheVersion, k.SHA256, k.Release, k.Compiler.Text, strings.Join(makeArgs, "\x01"),
		headersIdentity(k), env, tg.Arch)
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(srcDir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

func readCached(entry string) (*Result, bool) {
	b, err := os.ReadFile(filepath.Join(entry, "result.json"))
	if err != nil {
		return nil, false
	}
	var res Result
	if json.Unmarshal(b, &res) != nil {
		return nil, false
	}
	if res.Outcome == outcome.Pass {
		res.Ko = filepath.Join(entry, filepath.Base(res.Ko))
		if _, err := os.Stat(res.Ko); err != nil {
			return nil, false
		}
	}
	res.Dir, res.Cached, res.Setup, res.BuildRootCreated = entry, true, 0, false
	return &res, true
}

// writeCached stores res in entry: the .ko first, result.json last, so an
// entry with a result.json is always complete.
func writeCached(entry string, res *Result) error {
	if err := os.MkdirAll(entry, 0o755); err != nil {
		return err
	}
	if res.Outcome == outcome.Pass {
		ko, err := os.ReadFile(res.Ko)
		if err != nil {
			return err
		}
		if err := kernels.WriteFileAtomic(filepath.Join(entry, filepath.Base(res.Ko)), ko, 0o644); err != nil {
			return err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return kernels.WriteFileAtomic(filepath.Join(entry, "result.json"), b, 0o644)
}

// headersIdentity is the headers tree's content identity: its cache
// manifest's digest, or for a local kernel's tree a digest of every
// file's name, size and modification time.
func headersIdentity(k *kernels.Kernel) string {
	if k.HeadersDigest != "" {
		return "manifest:" + k.HeadersDigest
	}
	if k.Headers == "" {
		return "none"
	}
	h := sha256.New()
	filepath.WalkDir(k.Headers, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "%s\x00error\x00", p)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(k.Headers, p)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%v\x00", rel, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		return nil
	})
	return "tree:" + hex.EncodeToString(h.Sum(nil))
}

// buildEnv identifies where the module would be built: on the host, the
// versions of the tools the kernel's build needs (gcc-N, make, pahole...);
// in a build root, the root and the packages installed in it.
func buildEnv(k *kernels.Kernel, cacheDir string, opts Options) string {
	if len(HostMissing(k)) == 0 {
		var parts []string
		for _, t := range append(Needs(k), Tool{Name: "make"}) {
			parts = append(parts, t.Name+"="+toolVersion(t.Name))
		}
		return "host:" + strings.Join(parts, ";")
	}
	suite, _ := rootSuite(k)
	key := suite + "_" + k.Release
	if tg, err := TargetOf(k); err == nil && tg.Cross() {
		key = crossRootKey(suite, tg, k.Compiler.Major)
	}
	root := filepath.Join(cacheDir, "buildroots", key)
	h := sha256.New()
	for _, f := range []string{buildRootMark, "var/lib/dpkg/status"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "root:" + root + ":absent"
		}
		h.Write(b)
	}
	return "root:" + suite + ":" + hex.EncodeToString(h.Sum(nil))
}

var (
	toolVersionMu sync.Mutex
	toolVersions  = map[string]string{}
)

// toolVersion is the first line of `name --version`, once per process.
func toolVersion(name string) string {
	toolVersionMu.Lock()
	defer toolVersionMu.Unlock()
	if v, ok := toolVersions[name]; ok {
		return v
	}
	out, err := exec.Command(name, "--version").Output()
	v := "unknown"
	if err == nil {
		v, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	toolVersions[name] = v
	return v
}
