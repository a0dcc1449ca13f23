package vmtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kmatrix/kmatrix/kernels/version"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// plan is a validated Spec with its defaults applied and everything
// resolved on the host: what goes into the initramfs and what the init runs.
type plan struct {
	spec Spec
	// arch is the guest's, read from the kernel image: it picks QEMU, the
	// board, the console and event devices, and the init.
	arch  string
	qemu  string
	files []File   // per-run files, unique guest paths
	dirs  []string // extra empty directories (command working directories)
	wire  wire.Spec
	// prestart are the guest paths of the prestarted commands, sorted.
	prestart []string
}

// reservedGuestPaths belong to vmtest itself.
var reservedGuestPaths = []string{"/init", "/vmtest"}

// newPlan validates spec: every problem is a *SpecError naming the field,
// what is wrong and what to do.
func newPlan(spec Spec) (*plan, error) {
	p := &plan{spec: spec}
	s := &p.spec
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.MemoryMB == 0 {
		s.MemoryMB = DefaultMemoryMB
	}
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if s.OutputLimit == 0 {
		s.OutputLimit = DefaultOutputLimit
	}
	switch {
	case s.Timeout < 0:
		return nil, &SpecError{"Timeout", fmt.Errorf("%v is negative: want a positive duration, or 0 for %v", s.Timeout, DefaultTimeout)}
	case s.BootFloor < 0:
		return nil, &SpecError{"BootFloor", fmt.Errorf("%v is negative: want the measured bare-boot time, or 0 for the default estimate", s.BootFloor)}
	case s.BootTimeout < 0:
		return nil, &SpecError{"BootTimeout", fmt.Errorf("%v is negative: want a positive duration, or 0 for 10 × BootFloor", s.BootTimeout)}
	case s.MemoryMB < 64:
		return nil, &SpecError{"MemoryMB", fmt.Errorf("%d MiB is too little for a cloud kernel to boot: want 64 or more (default %d)", s.MemoryMB, DefaultMemoryMB)}
	case s.CPUs < 0:
		return nil, &SpecError{"CPUs", fmt.Errorf("%d is negative: want 1 or more", s.CPUs)}
	case s.OutputLimit < 0:
		return nil, &SpecError{"OutputLimit", fmt.Errorf("%d is negative: want a byte count, or 0 for %d", s.OutputLimit, DefaultOutputLimit)}
	}
	arch, err := checkKernel(s.Kernel)
	if err != nil {
		return nil, &SpecError{"Kernel", err}
	}
	p.arch = arch

	byGuest := map[string]string{} // guest path → field that put it there
	add := func(field string, f File) error {
		if prev, ok := byGuest[f.Guest]; ok {
			return &SpecError{field, fmt.Errorf("guest path %s is already used by %s: give each file its own path", f.Guest, prev)}
		}
		byGuest[f.Guest] = field
		p.files = append(p.files, f)
		return nil
	}
	for i, f := range s.Files {
		field := fmt.Sprintf("Files[%d]", i)
		if err := checkFile(&f); err != nil {
			return nil, &SpecError{field, err}
		}
		if err := add(field, f); err != nil {
			return nil, err
		}
	}

	p.wire = wire.Spec{StreamLimit: s.OutputLimit * 3 / 4, TailLimit: s.OutputLimit / 4}
	for i := range s.Commands {
		c := &s.Commands[i]
		field := fmt.Sprintf("Commands[%d]", i)
		if c.Name != "" {
			field += fmt.Sprintf(" (%q)", c.Name)
		}
		exe, err := resolveCommand(c, p.arch)
		if err != nil {
			return nil, &SpecError{field, err}
		}
		if c.Name == "" {
			c.Name = path.Base(c.Path)
		}
		switch {
		case c.Timeout < 0:
			return nil, &SpecError{field + ".Timeout", fmt.Errorf("%v is negative: want a positive duration, or 0 for the VM's deadline", c.Timeout)}
		case c.Dir != "" && !path.IsAbs(c.Dir):
			return nil, &SpecError{field + ".Dir", fmt.Errorf("%q is relative: want an absolute guest path", c.Dir)}
		}
		for _, kv := range c.Env {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return nil, &SpecError{field + ".Env", fmt.Errorf("%q: want KEY=VALUE", kv)}
			}
		}
		for _, f := range exe {
			if prev, ok := byGuest[f.Guest]; ok {
				if strings.HasPrefix(prev, "Commands") {
					continue // the same library for two commands
				}
				return nil, &SpecError{field, fmt.Errorf("needs %s in the guest, which %s already places there", f.Guest, prev)}
			}
			byGuest[f.Guest] = field
			p.files = append(p.files, f)
		}
		if c.Dir != "" {
			p.dirs = append(p.dirs, path.Clean(c.Dir))
		}
		wc := wire.Command{Name: c.Name, Path: c.Path, Args: c.Args, Env: c.Env, Dir: c.Dir, Timeout: c.Timeout, Prestart: c.Prestart}
		if c.Prestart {
			if err := checkPrestart(c, p.files); err != nil {
				return nil, &SpecError{field + ".Prestart", err}
			}
			if !slices.Contains(p.prestart, c.Path) {
				p.prestart = append(p.prestart, c.Path)
			}
		}
		if c.Stdin != nil {
			data, err := io.ReadAll(io.LimitReader(c.Stdin, MaxStdin+1))
			switch {
			case err != nil:
				return nil, &SpecError{field + ".Stdin", fmt.Errorf("read: %w", err)}
			case len(data) > MaxStdin:
				return nil, &SpecError{field + ".Stdin", fmt.Errorf("more than %d MiB: put the input in a File and have the command open it", MaxStdin>>20)}
			}
			if len(data) > 0 { // empty input: /dev/null, as without Stdin
				wc.Stdin = fmt.Sprintf("%s/%d", wire.StdinDir, i)
				p.files = append(p.files, File{Guest: wc.Stdin, Data: data, Mode: 0o644})
			}
		}
		p.wire.Commands = append(p.wire.Commands, wc)
	}

	slices.Sort(p.prestart)
	q, err := findQEMU(s.QEMU, p.arch)
	if err != nil {
		return nil, err
	}
	p.qemu = q
	return p, nil
}

// checkPrestart: a prestarted command's executable is in the snapshot.
func checkPrestart(c *Command, files []File) error {
	if c.Stdin != nil {
		return errors.New("set with Stdin: a prestarted command is started before its run's input exists; give it no Stdin, or do not prestart it")
	}
	for _, f := range files {
		if f.Guest == c.Path {
			if !f.Shared {
				return fmt.Errorf("its executable %s is not a Shared file: the snapshot holds only Shared files, so mark it Shared or do not prestart it", c.Path)
			}
			return nil
		}
	}
	return fmt.Errorf("its executable %s is not one of the Files: give it as a Shared file", c.Path)
}

// checkKernel makes sure path is a readable kernel image before QEMU gets
// it (QEMU's own message for a bad kernel is terse and arrives late), and
// returns its arch: an x86 bzImage is amd64, an arm64 Image arm64.
func checkKernel(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty: want the path of a vmlinuz (x86 bzImage or arm64 Image)")
	}
	arch, err := version.Arch(path)
	if err != nil {
		if errors.Is(err, version.ErrNotKernel) {
			return "", fmt.Errorf("%w: want a vmlinuz/bzImage or arm64 Image, as in /boot or a kernel package", err)
		}
		return "", fmt.Errorf("%w: want a readable vmlinuz (x86 bzImage or arm64 Image)", err)
	}
	return arch, nil
}

func checkFile(f *File) error {
	if err := checkGuestPath(f.Guest); err != nil {
		return fmt.Errorf("guest path: %w", err)
	}
	f.Guest = path.Clean(f.Guest)
	if f.Host == "" {
		if f.Mode == 0 {
			f.Mode = 0o644
		}
		return nil
	}
	if f.Data != nil {
		return fmt.Errorf("both Host (%s) and Data are set: want one of them", f.Host)
	}
	fi, err := os.Stat(f.Host)
	if err != nil {
		return fmt.Errorf("host file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("host file %s is a %s, not a regular file: list the files of a directory one by one", f.Host, fi.Mode().Type())
	}
	if f.Mode == 0 {
		f.Mode = fi.Mode().Perm()
	}
	return nil
}

func checkGuestPath(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%q is not absolute: want an absolute guest path such as /usr/local/bin/tool", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return errors.New(`"/" is the root directory: want a file path`)
	}
	for _, r := range reservedGuestPaths {
		if c == r || strings.HasPrefix(c, r+"/") {
			return fmt.Errorf("%s is vmtest's own (%s): choose another path", c, r)
		}
	}
	return nil
}

// resolveCommand finds the files a command needs copied into the guest:
// a bare name from the host PATH, or Command.Host.
func resolveCommand(c *Command, arch string) ([]File, error) {
	if c.Host != "" {
		if c.Path == "" {
			c.Path = "/usr/local/bin/" + filepath.Base(c.Host)
		}
		if err := checkGuestPath(c.Path); err != nil {
			return nil, fmt.Errorf("command path: %w", err)
		}
		c.Path = path.Clean(c.Path)
		fi, err := os.Stat(c.Host)
		if err != nil {
			return nil, fmt.Errorf("host executable: %w", err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("host executable %s is not an executable file", c.Host)
		}
		files, err := executableFiles(c.Host, c.Path, arch)
		if err != nil {
			return nil, fmt.Errorf("host executable: %w", err)
		}
		return files, nil
	}
	switch {
	case c.Path == "":
		return nil, errors.New("command path is empty: want the guest path of an executable, or a bare name to copy from the host PATH")
	case path.IsAbs(c.Path):
		c.Path = path.Clean(c.Path)
		return nil, nil // the guest reports it if it is not there
	case strings.Contains(c.Path, "/"):
		return nil, fmt.Errorf("command path %q is relative: want an absolute guest path, or a bare name to copy from the host PATH", c.Path)
	}
	host, err := exec.LookPath(c.Path)
	if err != nil {
		return nil, fmt.Errorf("command path %q: not found in the host PATH: install it on the host, or give the absolute guest path of an executable from Files", c.Path)
	}
	host, err = filepath.Abs(host)
	if err != nil {
		return nil, err
	}
	// The same path in the guest, resolved so that a merged-/usr symlink
	// (/bin → usr/bin) does not matter.
	if real, err := filepath.EvalSymlinks(host); err == nil && filepath.Base(real) == filepath.Base(host) {
		host = real
	}
	c.Path = host
	files, err := executableFiles(host, host, arch)
	if err != nil {
		return nil, fmt.Errorf("command path %q: %w", c.Path, err)
	}
	return files, nil
}
