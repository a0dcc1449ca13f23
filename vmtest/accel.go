package vmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/internal/cache"
	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// EnvAccel forces the accelerator: "tcg" or "kvm".
const EnvAccel = "KMATRIX_ACCEL"

// kvmTrialTimeout bounds the trial boot under KVM. A working KVM gets a
// cloud kernel to its init in well under a second; a broken one (here:
// /dev/kvm opens, QEMU starts, and the guest never gets past the firmware's
// "Booting from ROM...") spins until killed, so the trial must give up soon.
const kvmTrialTimeout = 5 * time.Second

// AccelChoice is the accelerator decision, as cached.
type AccelChoice struct {
	Accel  string `json:"accel"`
	Reason string `json:"reason"`
	// Key identifies the host setup the decision holds for: the QEMU
	// binary, /dev/kvm, the host kernel. Any change re-runs the trial.
	Key     string    `json:"key"`
	Checked time.Time `json:"checked"`
}

var accelMemo struct {
	sync.Mutex
	choice *AccelChoice
}

// chooseAccel decides between KVM and TCG: forced by $KMATRIX_ACCEL, else
// the cached outcome of a trial boot, else a trial boot of p's kernel.
func chooseAccel(ctx context.Context, p *plan) (*AccelChoice, error) {
	if h := hostArch(); p.arch != h {
		// KVM runs guests of the host's own architecture only (even
		// when $KMATRIX_ACCEL asks for it: a mixed matrix sets it once).
		return &AccelChoice{Accel: "tcg", Reason: fmt.Sprintf("an %s guest on an %s host: KVM only runs guests of the host's architecture", p.arch, h)}, nil
	}
	switch v := os.Getenv(EnvAccel); v {
	case "tcg", "kvm":
		return &AccelChoice{Accel: v, Reason: EnvAccel + "=" + v}, nil
	case "":
	default:
		return nil, fmt.Errorf("%w: %s=%q: want \"tcg\" or \"kvm\", or unset it to detect", ErrInvalidSpec, EnvAccel, v)
	}
	accelMemo.Lock()
	defer accelMemo.Unlock()
	key := accelKey(p.qemu)
	if c := accelMemo.choice; c != nil && c.Key == key {
		return c, nil
	}
	dir, err := vmtestCacheDir()
	if err != nil {
		return nil, err
	}
	c, err := cachedAccel(ctx, filepath.Join(dir, "accel.json"), key, func() *AccelChoice { return probeKVM(ctx, p) })
	if err != nil {
		return nil, err
	}
	accelMemo.choice = c
	return c, nil
}

// cachedAccel returns the decision stored in path for key, or runs probe
// and stores its answer. The file lock makes concurrent processes wait for
// one trial instead of each spinning a core with its own.
func cachedAccel(ctx context.Context, path, key string, probe func() *AccelChoice) (*AccelChoice, error) {
	unlock, err := cache.LockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if b, err := os.ReadFile(path); err == nil {
		var c AccelChoice
		if json.Unmarshal(b, &c) == nil && c.Key == key && (c.Accel == "kvm" || c.Accel == "tcg") {
			return &c, nil
		}
	}
	c := probe()
	if ctx.Err() != nil {
		return nil, ctx.Err() // an interrupted trial proves nothing: don't cache it
	}
	c.Key, c.Checked = key, time.Now().UTC()
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := cache.WriteFileAtomic(path, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

// hostArch is the host's architecture in Debian's words.
func hostArch() string {
	if runtime.GOARCH == "amd64" {
		return archAMD64
	}
	return runtime.GOARCH // arm64 is arm64 in both
}

func accelKey(qemu string) string {
	var parts []string
	if fi, err := os.Stat(qemu); err == nil {
		parts = append(parts, fmt.Sprintf("qemu=%s:%d:%d", qemu, fi.Size(), fi.ModTime().UnixNano()))
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/kvm", &st); err == nil {
		parts = append(parts, fmt.Sprintf("kvm=%d", st.Rdev))
	} else {
		parts = append(parts, "kvm=none")
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		parts = append(parts, "host="+utsString(u.Release[:])+" "+utsString(u.Version[:]))
	}
	return strings.Join(parts, " ")
}

func utsString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// probeKVM really boots p's kernel under KVM, with an init that powers off
// at once, and believes KVM works only if the init said hello.
func probeKVM(ctx context.Context, p *plan) *AccelChoice {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return &AccelChoice{Accel: "tcg", Reason: fmt.Sprintf("KVM unusable: %v", err)}
	}
	f.Close()
	trial := *p
	trial.spec.Timeout = kvmTrialTimeout
	trial.spec.BootTimeout = 0
	trial.spec.Console = nil
	trial.files, trial.dirs = nil, nil
	res, err := boot(ctx, &trial, "kvm", &wire.Spec{PowerOffOnly: true}, nil)
	if err == nil && res.Outcome == outcome.Pass {
		return &AccelChoice{Accel: "kvm", Reason: fmt.Sprintf("a trial boot under KVM reached the init in %v", res.Timings.Total.Round(time.Millisecond))}
	}
	why := ""
	switch {
	case res == nil:
		why = err.Error()
	case res.Outcome == outcome.Timeout:
		why = fmt.Sprintf("it did not reach the init within %v", kvmTrialTimeout)
		if l := lastLine(res.Console); l != "" {
			why += fmt.Sprintf(" (the console stopped at %q)", l)
		}
	default:
		why = fmt.Sprintf("it ended with %s: %s", res.Outcome, res.Err)
	}
	return &AccelChoice{Accel: "tcg", Reason: fmt.Sprintf("KVM unusable: a trial boot of %s under KVM failed: %s", p.spec.Kernel, why)}
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
