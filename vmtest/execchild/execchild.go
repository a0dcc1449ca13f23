// Package execchild provides kmatrix-child, a tiny static executable that
// guest tests exec when they need a process of their own: an exec for a
// tracer to see, a child that spawns a grandchild, or a task sleeping or
// stopped in a known state.
//
// The guest tests used to re-exec their own test binary for this, but a Go
// binary of 10 MB spends some 60 ms starting its runtime under TCG; this
// 1.4 kB one needs about 4 ms, which made the bpf and kmod checks several
// times faster. Being single-threaded and free of a runtime that wakes up
// on its own, it also stays in the state it is put in.
package execchild

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Modes of the child: its first argument.
const (
	Exit  = "exit"  // exit 0 at once
	Spawn = "spawn" // exec itself as an Exit child, wait for it, print its pid and a newline
	Sleep = "sleep" // sleep in pause(2), state S, until killed
	Stop  = "stop"  // SIGSTOP itself (state T), then sleep
)

// Name is the executable's base name, and so the comm of its processes
// (it is shorter than TASK_COMM_LEN).
const Name = "kmatrix-child"

var (
	once    sync.Once
	path    string
	pathErr error
)

// Path writes the child to the temporary directory, once per process, and
// returns its path. The directory is named by the child's checksum, so
// runs share one copy and a new version never overwrites an old one in use.
func Path() (string, error) {
	once.Do(func() { path, pathErr = write(os.TempDir()) })
	return path, pathErr
}

func write(tmp string) (string, error) {
	if len(binary) == 0 {
		return "", fmt.Errorf("execchild: no %s for this arch: kmatrix's guests are amd64 or arm64", Name)
	}
	sum := sha256.Sum256(binary)
	dir := filepath.Join(tmp, "kmatrix-child-"+hex.EncodeToString(sum[:6]))
	p := filepath.Join(dir, Name)
	if b, err := os.ReadFile(p); err == nil && sha256.Sum256(b) == sum {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("execchild: %w", err)
	}
	// Write beside and rename: another process may be exec'ing it.
	f, err := os.CreateTemp(dir, Name+".tmp*")
	if err != nil {
		return "", fmt.Errorf("execchild: %w", err)
	}
	_, err = f.Write(binary)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("execchild: writing %s: %w", p, err)
	}
	return p, nil
}

// Command is the child in the given mode, its stderr going to ours (it
// writes there only when something is wrong).
func Command(mode string) (*exec.Cmd, error) {
	p, err := Path()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p, mode)
	cmd.Stderr = os.Stderr
	return cmd, nil
}
