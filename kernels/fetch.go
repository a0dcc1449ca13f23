package kernels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// The cache layout (under CacheDir):
//
//	index/                      verified InRelease files and the linux-* stanzas of their Packages
//	kernels/<release>-<key>/    one kernel: vmlinuz, config, vmlinuz.btf, entry.json, root/ (the unpacked packages)
//	headers/<release>-<key>/    root/ with the headers, -common and kbuild packages; Makefile fixed up
//	downloads/                  .part files being downloaded (removed once unpacked)
//
// <key> is derived from the SHA-256s of the packages in the entry, so a new
// package build is a new entry and an entry never changes once complete.
// An entry directory appears by rename only when complete; entry.json is its
// last file. Work on an entry holds the flock <entry>.lock.

const entryMeta = "entry.json"

type entryInfo struct {
	Vmlinuz        string `json:"vmlinuz"` // relative to the entry
	Config         string `json:"config"`
	VmlinuzPackage string `json:"vmlinuz_package"`
	Headers        string `json:"headers,omitempty"` // relative, for headers entries
}

// kernelsLayout names what a kernels entry holds beyond its packages'
// files; changing what is unpacked changes it, so that entries of an older
// kmatrix are made again rather than found lacking (2: GuestModules kept;
// 3: the modules that provide kfuncs kept too, indexed in kfuncs.json).
const kernelsLayout = "kernels layout 3: guest modules, kfunc providers"

func entryKey(kind, release string, pkgs []Package) string {
	h := sha256.New()
	if kind == "kernels" {
		h.Write([]byte(kernelsLayout))
	}
	var sums []string
	for _, p := range pkgs {
		sums = append(sums, p.SHA256)
	}
	sort.Strings(sums)
	for _, s := range sums {
		h.Write([]byte(s))
	}
	return release + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Cached reports whether Fetch would find r (and its headers, with
// opts.Headers) in the cache without downloading.
func Cached(r Resolved, opts Options) bool {
	if r.Local != "" {
		return true
	}
	dir := opts.CacheDir
	if dir == "" {
		var err error
		if dir, err = CacheDir(); err != nil {
			return false
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kernels", entryKey("kernels", r.Release, r.boot()), entryMeta)); err != nil {
		return false
	}
	if opts.Headers && len(r.headers()) > 0 {
		if _, err := os.Stat(filepath.Join(dir, "headers", entryKey("headers", r.Release, r.headers()), entryMeta)); err != nil {
			return false
		}
	}
	return true
}

// Fetch makes r available: downloads its packages (SHA-256 checked against
// the lock), unpacks them into the cache, extracts the BTF, and (with
// opts.Headers) prepares the headers tree. A cached kernel needs no network.
// A kernel whose headers the archive does not list (r.HeadersMissing) is
// fetched without them: Kernel.HeadersMissing then says why.
func Fetch(ctx context.Context, r Resolved, opts Options) (*Kernel, error) {
	if r.Local != "" {
		return LoadLocal(r.Name, r.Local)
	}
	s, err := newSession(opts, false)
	if err != nil {
		return nil, err
	}
	RemoveLeftovers(s.cache, s.log)
	return s.fetch(ctx, r)
}

func (s *session) fetch(ctx context.Context, r Resolved) (*Kernel, error) {
	if len(r.boot()) == 0 || r.Release == "" {
		return nil, fmt.Errorf("kernel %q: nothing resolved to fetch", r.Name)
	}
	dir, info, _, err := s.entry(ctx, "kernels", r, r.boot(), s.buildKernel)
	if err != nil {
		return nil, err
	}
	k := &Kernel{
		Name: r.Name, Suite: r.Image().Pocket, BuildRootSuite: r.Suite,
		Vmlinuz: filepath.Join(dir, info.Vmlinuz), Config: filepath.Join(dir, info.Config),
	}
	for _, p := range r.boot() {
		if p.Name == info.VmlinuzPackage {
			k.Package, k.PackageVersion, k.SHA256 = p.Name, p.Version, p.SHA256
		}
	}
	if err := k.readFacts(); err != nil {
		return nil, fmt.Errorf("kernel %q: %w", r.Name, err)
	}
	if ix := filepath.Join(dir, KfuncIndexFile); fileExists(ix) {
		k.KfuncIndex = ix
	}
	if k.Release != r.Release {
		return nil, fmt.Errorf("kernel %q: the vmlinuz says release %s, the packages say %s", r.Name, k.Release, r.Release)
	}
	if k.Arch != r.GetArch() {
		return nil, fmt.Errorf("kernel %q: the vmlinuz is an %s kernel, the catalog asks for %s", r.Name, k.Arch, r.GetArch())
	}
	if b := filepath.Join(dir, "vmlinuz.btf"); fileExists(b) {
		k.BTFPath = b
	}
	if k.Modules, err = guestModules(filepath.Join(dir, "root"), k.Release); err != nil {
		return nil, fmt.Errorf("kernel %q: %w", r.Name, err)
	}
	k.HeadersMissing = r.HeadersMissing
	if s.opts.Headers && len(r.headers()) > 0 {
		hdir, hinfo, digest, err := s.entry(ctx, "headers", r, r.headers(), s.buildHeaders)
		if err != nil {
			return nil, err
		}
		k.Headers = filepath.Join(hdir, hinfo.Headers)
		k.HeadersDigest = digest
	}
	return k, nil
}

// guestModules lists the GuestModules files the entry under root has.
func guestModules(root, release string) ([]string, error) {
	var mods []string
	for _, lib := range []string{"lib", "usr/lib"} {
		for _, m := range GuestModules {
			found, err := filepath.Glob(filepath.Join(root, lib, "modules", release, "kernel", m+".ko*"))
			if err != nil {
				return nil, err
			}
			mods = append(mods, found...)
		}
	}
	return mods, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// entry returns the complete cache entry of pkgs under kind/, building it
// with build (into a temporary directory renamed into place) if missing.
func (s *session) entry(ctx context.Context, kind string, r Resolved, pkgs []Package,
	build func(ctx context.Context, r Resolved, tmp, final string) (*entryInfo, error)) (string, *entryInfo, string, error) {
	base := filepath.Join(s.cache, kind)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", nil, "", &writeError{fmt.Errorf("cache: %w", err)}
	}
	key := entryKey(kind, r.Release, pkgs)
	final := filepath.Join(base, key)
	info, digest, err := s.checkEntry(final, kind, pkgs, false)
	if err == nil {
		return final, info, digest, nil
	}
	damaged := errors.Is(err, ErrDamaged)
	if damaged {
		s.logf("kernels: %v; fetching it again", err)
	}
	unlock, err := LockFile(final + ".lock")
	if err != nil {
		return "", nil, "", err
	}
	defer unlock()
	// Another process may have made or repaired it meanwhile; an entry of
	// an older kmatrix gets its manifest now.
	info, digest, err = s.checkEntry(final, kind, pkgs, true)
	if err == nil {
		return final, info, digest, nil
	}
	if errors.Is(err, ErrDamaged) && !damaged {
		s.logf("kernels: %v; fetching it again", err)
	}
	stale, _ := filepath.Glob(filepath.Join(base, ".tmp-"+key+"-*"))
	for _, d := range stale {
		os.RemoveAll(d) // debris of a killed run: we hold the lock
	}
	tmp, err := os.MkdirTemp(base, ".tmp-"+key+"-")
	if err != nil {
		return "", nil, "", &writeError{fmt.Errorf("cache: %w", err)}
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	for _, p := range pkgs {
		if err := s.fetchPackage(ctx, p, filepath.Join(tmp, "root")); err != nil {
			return "", nil, "", fmt.Errorf("kernel %q: %w", r.Name, err)
		}
	}
	info, err = build(ctx, r, tmp, final)
	if err != nil {
		return "", nil, "", fmt.Errorf("kernel %q: %w", r.Name, err)
	}
	m, err := makeManifest(tmp, pkgs)
	if err != nil {
		return "", nil, "", &writeError{fmt.Errorf("cache: manifest of %s: %w", final, err)}
	}
	if err := writeManifest(tmp, m); err != nil {
		return "", nil, "", &writeError{err}
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := WriteFileAtomic(filepath.Join(tmp, entryMeta), b, 0o644); err != nil {
		return "", nil, "", err
	}
	// A damaged (or incomplete) entry under this key is moved aside, not
	// deleted first, so that the key is never without a whole entry for
	// longer than two renames.
	old := ""
	if _, err := os.Lstat(final); err == nil {
		old = filepath.Join(base, ".tmp-"+key+"-old")
		os.RemoveAll(old)
		if err := os.Rename(final, old); err != nil {
			return "", nil, "", &writeError{fmt.Errorf("cache: %w", err)}
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", nil, "", &writeError{fmt.Errorf("cache: %w", err)}
	}
	if old != "" {
		os.RemoveAll(old)
	}
	_, digest, err = readManifest(final)
	if err != nil {
		return "", nil, "", err
	}
	return final, info, digest, nil
}

// errNoManifest: a complete entry made by a kmatrix from before manifests.
var errNoManifest = errors.New("no manifest")

// checkEntry returns the complete entry dir's info and manifest digest
// when its files match its manifest (cheaply: sizes, and the vmlinuz's
// SHA-256). With locked (the caller holds the entry's lock) an entry of an
// older kmatrix, which has no manifest, is brought up to date first: its
// headers Makefile made relocatable, its manifest recorded as it is.
func (s *session) checkEntry(dir, kind string, pkgs []Package, locked bool) (*entryInfo, string, error) {
	info, err := readEntry(dir)
	if err != nil {
		return nil, "", err
	}
	m, digest, err := readManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if !locked {
			return nil, "", errNoManifest
		}
		if info.Headers != "" {
			if err := relocateMakefile(filepath.Join(dir, info.Headers, "Makefile")); err != nil {
				return nil, "", &writeError{err}
			}
		}
		if m, err = makeManifest(dir, pkgs); err != nil {
			return nil, "", &writeError{fmt.Errorf("cache: manifest of %s: %w", dir, err)}
		}
		if err := writeManifest(dir, m); err != nil {
			return nil, "", &writeError{err}
		}
		s.logf("kernels: recorded the manifest of %s (made by an older kmatrix)", dir)
		if _, digest, err = readManifest(dir); err != nil {
			return nil, "", err
		}
	} else if err != nil {
		return nil, "", err
	}
	var hash []string
	if kind == "kernels" {
		hash = append(hash, info.Vmlinuz)
	}
	if err := m.check(dir, false, hash...); err != nil {
		return nil, "", err
	}
	return info, digest, nil
}

func readEntry(dir string) (*entryInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, entryMeta))
	if err != nil {
		return nil, err
	}
	var info entryInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// fetchPackage downloads one .deb, checks it, and unpacks it under root.
// A kernel's modules are all unpacked: buildKernel indexes them and keeps
// only those the guests may load.
func (s *session) fetchPackage(ctx context.Context, p Package, root string) error {
	if s.mirrors.Archive == "" || s.mirrors.Security == "" {
		m, err := discoverMirrors(s.aptDir(), os.Getenv(EnvMirror), os.Getenv(EnvSecurityMirror))
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.mirrors.Archive == "" {
			s.mirrors.Archive = m.Archive
		}
		if s.mirrors.Security == "" {
			s.mirrors.Security = m.Security
		}
		s.mu.Unlock()
	}
	url := s.mirrors.For(p.Pocket) + "/" + p.Filename
	tmp, done, err := s.downloadFile(ctx, filepath.Join(s.cache, "downloads"), url, p.SHA256, p.Size)
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.Name, p.Version, err)
	}
	defer done()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return &writeError{err}
	}
	if err := unpackDeb(tmp, path.Base(p.Filename), root, nil); err != nil {
		return fmt.Errorf("%s %s: %w", p.Name, p.Version, err)
	}
	return nil
}

func (s *session) aptDir() string {
	if s.opts.aptDir != "" {
		return s.opts.aptDir
	}
	return aptSourcesDir
}

// buildKernel finds the vmlinuz and config in the unpacked packages (up to
// 6.12 in boot/ of linux-image-*, from sid's 7.x in usr/lib/modules/<release>/
// of linux-binary-*/linux-base-*) and extracts the BTF.
func (s *session) buildKernel(ctx context.Context, r Resolved, tmp, final string) (*entryInfo, error) {
	root := filepath.Join(tmp, "root")
	find := func(cands ...string) string {
		for _, c := range cands {
			if fi, err := os.Stat(filepath.Join(root, c)); err == nil && fi.Mode().IsRegular() {
				return c
			}
		}
		return ""
	}
	rel := r.Release
	vml := find("boot/vmlinuz-"+rel, "usr/lib/modules/"+rel+"/vmlinuz", "lib/modules/"+rel+"/vmlinuz")
	cfg := find("boot/config-"+rel, "usr/lib/modules/"+rel+"/config", "lib/modules/"+rel+"/config")
	if vml == "" {
		return nil, fmt.Errorf("no vmlinuz for %s in packages %s", rel, pkgNames(r.boot()))
	}
	info := &entryInfo{Vmlinuz: "root/" + vml, Config: "root/" + cfg}
	if cfg == "" {
		// Debian's 6.19 to 7.1 backports keep the config in
		// linux-base-<abi>, which the index drops (like the headers) while
		// the signed image stays listed: read what kmatrix needs from the
		// vmlinux itself.
		derived, err := deriveConfig(filepath.Join(root, vml), rel, r.boot())
		if err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(filepath.Join(tmp, "config"), derived, 0o644); err != nil {
			return nil, &writeError{err}
		}
		info.Config, cfg = "config", "../config"
	}
	for _, p := range r.boot() {
		// The package named after the layout: linux-binary- holds the vmlinuz when there is one.
		if strings.HasPrefix(vml, "boot/") && strings.HasPrefix(p.Name, "linux-image-") ||
			!strings.HasPrefix(vml, "boot/") && strings.HasPrefix(p.Name, "linux-binary-") {
			info.VmlinuzPackage = p.Name
		}
	}
	if info.VmlinuzPackage == "" {
		info.VmlinuzPackage = r.Image().Name
	}
	cfgMap, err := ReadConfig(filepath.Join(root, cfg))
	if err != nil {
		return nil, err
	}
	if cfgMap["CONFIG_DEBUG_INFO_BTF"] == "y" {
		raw, err := ExtractBTF(filepath.Join(root, vml))
		if err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(filepath.Join(tmp, "vmlinuz.btf"), raw, 0o644); err != nil {
			return nil, &writeError{err}
		}
	}
	if err := keepModules(tmp, rel, r.boot()); err != nil {
		return nil, err
	}
	return info, nil
}

// deriveConfig writes the part of a kernel config kmatrix uses, for a
// kernel whose packages hold no config: CONFIG_CC_VERSION_TEXT from the
// linux_banner in its vmlinux ("Linux version 7.0.13+deb13-cloud-amd64
// (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-14 (Debian
// 14.2.0-19) 14.2.0, GNU ld ...) #1 ..."), CONFIG_DEBUG_INFO_BTF from its
// .BTF section. A comment at the top says so.
func deriveConfig(vmlinuz, release string, pkgs []Package) ([]byte, error) {
	vmlinux, err := decompressVmlinux(vmlinuz)
	if err != nil {
		return nil, err
	}
	m := bannerCCRE.FindSubmatch(vmlinux)
	if m == nil || string(m[1]) != release {
		return nil, fmt.Errorf("no config for %s in packages %s, and no \"Linux version %s (...) (compiler, linker)\" banner in its vmlinux to read the compiler from",
			release, pkgNames(pkgs), release)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Not the kernel's .config: the archive lists none for %s (packages %s).\n# kmatrix read these from its vmlinux.\n", release, pkgNames(pkgs))
	fmt.Fprintf(&b, "CONFIG_CC_VERSION_TEXT=%q\n", string(m[2]))
	if ef, err := elf.NewFile(bytes.NewReader(vmlinux)); err == nil && ef.Section(".BTF") != nil || scanBTF(vmlinux) != nil {
		b.WriteString("CONFIG_DEBUG_INFO_BTF=y\n")
	}
	return []byte(b.String()), nil
}

var bannerCCRE = regexp.MustCompile(`Linux version (\S+) \([^()]*\) \(((?:[^()]|\([^()]*\))+?), (?:GNU ld|LLD|ld)`)

func pkgNames(ps []Package) string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

// Get resolves the named kernels of cat (all when names is empty) and
// fetches them in parallel. One broken kernel never hides the others: the
// kernels that worked are returned, in catalog order, along with a
// *multierror.Error that names every kernel that did not.
func Get(ctx context.Context, cat *Catalog, names []string, opts Options) ([]*Kernel, error) {
	sel, err := cat.Select(names)
	if err != nil {
		return nil, err
	}
	rs, rerr := Resolve(ctx, sel, opts)
	var errs *multierror.Error
	if rerr != nil {
		var me *multierror.Error
		if !errors.As(rerr, &me) {
			return nil, rerr
		}
		errs = multierror.Append(errs, me.Errors...)
	}
	s, err := newSession(opts, false)
	if err != nil {
		return nil, err
	}
	RemoveLeftovers(s.cache, s.log)
	par := opts.Parallel
	if par <= 0 {
		par = 4
	}
	sem := make(chan struct{}, par)
	ks := make([]*Kernel, len(rs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var k *Kernel
			var err error
			if r.Local != "" {
				k, err = LoadLocal(r.Name, r.Local)
			} else {
				k, err = s.fetch(ctx, r)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = multierror.Append(errs, err)
				return
			}
			ks[i] = k
		})
	}
	wg.Wait()
	var out []*Kernel
	for _, k := range ks {
		if k != nil {
			out = append(out, k)
		}
	}
	return out, errs.ErrorOrNil()
}
