package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// A spare worker is a batch worker started before its flags are known, so
// that a kmatrix-guest prestarted in a guest snapshot (vmtest's
// Command.Prestart) holds it started and warmed up: its Go start-up, the
// decode of the kernel's BTF and the kernel's own first BPF costs are
// then paid once, when the snapshot is made, rather than by every run
// (some 0.6 s of a 5.10 row under TCG). It says it is ready with one line
// on stdout and waits for its SpareSetup on stdin; the object paths
// follow, as for any worker.

// SpareSetup is what a spare worker learns once its run is known: the
// worker's flags, and the environment and directory of the run.
type SpareSetup struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
}

// spareReady is a spare worker's first line.
const spareReady = "spare worker ready"

// SpareWorker is a started spare worker.
type SpareWorker struct{ w *workerProc }

// StartSpare starts cmd, a kmatrix-guest that will be a spare worker
// (ServeSpare), and waits until it is warmed up.
func StartSpare(cmd *exec.Cmd) (*SpareWorker, error) {
	w, err := startWorker(cmd)
	if err != nil {
		return nil, err
	}
	s := &SpareWorker{w: w}
	// Byte by byte: what follows on stdout is the supervisor's to read.
	line, err := readLine(w.stdout)
	if err != nil || line != spareReady {
		s.Close()
		return nil, fmt.Errorf("the spare worker did not get ready (%q, %v): %s", line, err, strings.TrimSpace(w.stderr.String()))
	}
	return s, nil
}

func (s *SpareWorker) setUp(setup SpareSetup) error {
	b, err := json.Marshal(setup)
	if err == nil {
		_, err = s.w.stdin.Write(append(b, '\n'))
	}
	return err
}

// Close stops a spare worker that was not used.
func (s *SpareWorker) Close() {
	s.w.cmd.Process.Kill()
	s.w.stdin.Close()
	s.w.cmd.Wait()
}

// WarmUp does what every worker's first object needs: it decodes the
// kernel's BTF into cache and makes the kernel do its first program
// load's one-time work (5.10 parses its own BTF then, not at boot).
// Failures are left to the objects to meet and report.
func WarmUp(cache *btf.Cache) {
	cache.Kernel()
	features.HaveProgramType(ebpf.SocketFilter)
}

// ServeSpare is a spare worker's side: warm up, say so on out, read the
// SpareSetup from in and take up its environment and directory; it
// returns the worker's flags and the reader the object paths come on.
func ServeSpare(in io.Reader, out io.Writer, cache *btf.Cache) ([]string, error) {
	WarmUp(cache)
	if _, err := fmt.Fprintln(out, spareReady); err != nil {
		return nil, err
	}
	line, err := readLine(in)
	if err != nil {
		return nil, fmt.Errorf("waiting for the setup: %w", err)
	}
	var setup SpareSetup
	if err := json.Unmarshal([]byte(line), &setup); err != nil {
		return nil, fmt.Errorf("the setup %q: %w", line, err)
	}
	os.Clearenv()
	for _, kv := range setup.Env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	if setup.Dir != "" {
		if err := os.Chdir(setup.Dir); err != nil {
			return nil, err
		}
	}
	return setup.Args, nil
}

// readLine reads one line without reading past it.
func readLine(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return string(line), nil
			}
			line = append(line, b[0])
			continue
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return string(line), err
	}
}
