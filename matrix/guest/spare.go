package guest

import (
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"

	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

// A spare worker is a batch worker started before its flags are known, so
// that a kmatrix-guest prestarted in a guest snapshot (vmtest's
// Command.Prestart) holds it started and warmed up: its Go start-up, the
// decode of the kernel's BTF and the kernel's own first BPF costs are
// then paid once, when the snapshot is made, rather than by every run
// (some 0.6 s of a 5.10 row under TCG). It is prestarted itself (package
// vmtest/prestart): the batch releases it with the worker's command line,
// and the object paths follow on its stdin, as for any worker.

// EnvSpare, set, makes a prestarted kmatrix-guest a spare worker: its
// warm-up is WarmUp rather than starting a spare of its own.
const EnvSpare = "KMATRIX_GUEST_SPARE"

// spareTimeout bounds a spare worker's warm-up; vmtest's init gives all
// of a snapshot's prestarted processes 30 s.
const spareTimeout = 20 * time.Second

// SpareWorker is a started spare worker.
type SpareWorker struct {
	w    *workerProc
	proc *prestart.Process
}

// StartSpare starts cmd, a kmatrix-guest, as a spare worker, and waits
// until it is warmed up.
func StartSpare(cmd *exec.Cmd) (*SpareWorker, error) {
	cmd.Env = append(cmd.Environ(), EnvSpare+"=1")
	w, err := newWorker(cmd)
	if err != nil {
		return nil, err
	}
	proc, err := prestart.Start(cmd, time.Now().Add(spareTimeout))
	if err != nil {
		return nil, fmt.Errorf("the spare worker: %w: %s", err, strings.TrimSpace(w.stderr.String()))
	}
	return &SpareWorker{w: w, proc: proc}, nil
}

// Close stops a spare worker that was not used.
func (s *SpareWorker) Close() { s.proc.Kill() }

// WarmUp does what every worker's first object needs: it decodes the
// kernel's BTF into cache and makes the kernel do its first program
// load's one-time work (5.10 parses its own BTF then, not at boot).
// Failures are left to the objects to meet and report.
func WarmUp(cache *btf.Cache) {
	cache.Kernel()
	features.HaveProgramType(ebpf.SocketFilter)
}
