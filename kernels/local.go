package kernels

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kmatrix/kmatrix/internal/cache"
	"github.com/kmatrix/kmatrix/kernels/image"
)

// LoadLocal describes a kernel the user built or unpacked themselves: dir
// holds "vmlinuz" (or vmlinuz-*), "config" (or config-*), and optionally a
// headers tree in "headers/" (or a "build" symlink, as in /lib/modules/<release>).
func LoadLocal(name, dir string) (*Kernel, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("local kernel %q: %s is not a directory: want one holding vmlinuz and config", name, dir)
	}
	vmlinuz, err := findOne(abs, "vmlinuz", "vmlinuz-*", "bzImage", "Image", "Image.gz")
	if err != nil {
		return nil, fmt.Errorf("local kernel %q: %w", name, err)
	}
	config, err := findOne(abs, "config", "config-*", ".config")
	if err != nil {
		return nil, fmt.Errorf("local kernel %q: %w", name, err)
	}
	k := &Kernel{Name: name, Vmlinuz: vmlinuz, Config: config}
	for _, h := range []string{"headers", "build"} {
		p := filepath.Join(abs, h)
		if fi, err := os.Stat(filepath.Join(p, "Makefile")); err == nil && !fi.IsDir() {
			k.Headers = p
			break
		}
	}
	if k.SHA256, err = fileSHA256(vmlinuz); err != nil {
		return nil, fmt.Errorf("local kernel %q: %w", name, err)
	}
	if err := k.readFacts(); err != nil {
		return nil, fmt.Errorf("local kernel %q: %w", name, err)
	}
	return k, nil
}

// readFacts fills Arch, Release, Version, Compiler and BTF from Vmlinuz
// and Config.
func (k *Kernel) readFacts() error {
	info, err := image.Read(k.Vmlinuz)
	if err != nil {
		return err
	}
	banner := info.Banner
	k.Arch = info.Arch
	k.Release, _, _ = strings.Cut(banner, " ")
	if k.Version, err = upstreamVersion(k.Release, banner); err != nil {
		return fmt.Errorf("%s: %w", k.Vmlinuz, err)
	}
	cfg, err := ReadConfig(k.Config)
	if err != nil {
		return err
	}
	text, ok := cfg["CONFIG_CC_VERSION_TEXT"]
	if !ok {
		return fmt.Errorf("%s: no CONFIG_CC_VERSION_TEXT: is it a kernel config from 4.18 or newer?", k.Config)
	}
	if k.Compiler, err = ParseCompiler(text); err != nil {
		return fmt.Errorf("%s: %w", k.Config, err)
	}
	k.BTF = cfg["CONFIG_DEBUG_INFO_BTF"] == "y"
	return nil
}

func findOne(dir string, patterns ...string) (string, error) {
	for _, p := range patterns {
		m, _ := filepath.Glob(filepath.Join(dir, p))
		if len(m) == 1 {
			return m[0], nil
		}
		if len(m) > 1 {
			return "", fmt.Errorf("%s: several files match %q (%v): keep one", dir, p, m)
		}
	}
	return "", fmt.Errorf("%s: no file named %s", dir, strings.Join(patterns, " or "))
}

func fileSHA256(path string) (string, error) {
	_, sum, err := cache.FileSHA256(path)
	return sum, err
}
