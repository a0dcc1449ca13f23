package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// maxCheckOutput bounds the check command's output kept in a result: the
// end is kept, where failures are usually reported.
const maxCheckOutput = 64 << 10

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
		t.truncated = true
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	if t.truncated {
		return fmt.Sprintf("[output truncated to its last %d bytes]\n%s", t.max, t.buf.String())
	}
	return t.buf.String()
}

// runCheck runs the user's check command directly (the guest has no
// shell) with the given deadline, and turns its exit status into a result:
// pass on 0, fail otherwise, timeout when killed at the deadline, and
// infra-error when it could not be started at all.
func runCheck(argv []string, timeout time.Duration) ProgramResult {
	res := ProgramResult{Stage: StageCheck, Type: "command", Section: strings.Join(argv, " ")}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := &tailBuffer{max: maxCheckOutput}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Do not wait for grandchildren holding the output pipe open.
	cmd.WaitDelay = time.Second

	start := time.Now()
	err := cmd.Run()
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	res.Log = out.String()
	if cmd.ProcessState != nil {
		code := cmd.ProcessState.ExitCode()
		res.Facts.ExitCode = &code
	}
	setErrno(&res.Facts, err)

	var exitErr *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.Outcome = outcome.Timeout
		res.Message = fmt.Sprintf("check command %q did not finish within %s and was killed", argv[0], timeout)
	case err == nil:
		res.Outcome = outcome.Pass
		res.Message = fmt.Sprintf("check command %q exited 0", argv[0])
	case errors.As(err, &exitErr):
		res.Outcome = outcome.Fail
		res.Message = fmt.Sprintf("check command %q failed: %v", argv[0], exitErr)
	default:
		res.Outcome = outcome.InfraError
		res.Message = fmt.Sprintf("check command %q could not be run: %v (the guest has no shell: give the path of an executable that is in the guest)", argv[0], err)
	}
	return res
}
