package guest

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kmod"
)

// LoadModule loads a user's kernel module (a .ko built for the running
// kernel), runs the check command while it is loaded, and unloads it. It
// reports a load result, the check's result (when there is a check) and an
// unload result (when it loaded), through opts.OnResult as each is known.
// Failures are classified by package kmod: wrong vermagic, unknown symbol,
// rejected signature, already loaded.
func LoadModule(path string, opts Options) []ProgramResult {
	var results []ProgramResult
	emit := func(r ProgramResult) {
		results = append(results, r)
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
	}
	name := strings.TrimSuffix(filepath.Base(path), ".ko")
	if info, err := kmod.ModInfo(path); err == nil && info["name"] != "" {
		name = info["name"]
	}
	res := ProgramResult{Program: name, Section: filepath.Base(path), Type: "module", Stage: StageLoad}
	start := time.Now()
	err := kmod.Load(path, "")
	res.DurationMS = msSince(start)
	if err != nil {
		res.Outcome, res.Message = outcome.LoadError, err.Error()
		var le *kmod.LoadError
		if errors.As(err, &le) {
			res.Outcome, res.Message = le.Class, le.Reason
			res.Log = strings.Join(le.Dmesg, "\n")
			res.Facts.Errno, res.Facts.ErrnoValue = errnoName(syscall.Errno(le.Errno)), int(le.Errno)
			res.Facts.Class = Class(le.Kind)
		}
		emit(res)
		return results
	}
	res.Outcome, res.Message = outcome.Pass, fmt.Sprintf("module %s loaded", name)
	emit(res)

	if len(opts.Check) > 0 {
		timeout := opts.CheckTimeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		emit(runCheck(opts.Check, timeout))
	}

	un := ProgramResult{Program: name, Section: filepath.Base(path), Type: "module", Stage: StageUnload}
	start = time.Now()
	err = kmod.Unload(name)
	un.DurationMS = msSince(start)
	if err != nil {
		un.Outcome, un.Message = outcome.Fail, fmt.Sprintf("delete_module %s: %v", name, err)
	} else {
		un.Outcome, un.Message = outcome.Pass, fmt.Sprintf("module %s unloaded", name)
	}
	emit(un)
	return results
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
