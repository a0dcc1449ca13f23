package kmod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Device talks to the loaded module through its character device. Every
// call opens the device afresh, so each sees its own snapshot.
type Device struct {
	// Path is the device node, normally DevicePath.
	Path string
}

// Record is one exec the module saw.
type Record struct {
	// Seq numbers execs since the module loaded (resets do not restart it).
	Seq uint64 `json:"seq"`
	// Pid is the thread-group id of the task that exec'd; Parent its parent's.
	Pid    int `json:"pid"`
	Parent int `json:"parent"`
	// Comm is the task's name after the exec (the file name, cut to 15 bytes).
	Comm string `json:"comm"`
}

// TaskState is the module's answer about one task.
type TaskState struct {
	Pid int `json:"pid"`
	// Raw is task_struct's state word (__state since 5.14).
	Raw uint32 `json:"raw"`
	// Char is the state letter as /proc/<pid>/stat shows it: R, S, D, T, t, X, Z, P or I.
	Char byte `json:"char"`
}

// ErrDevice is wrapped by errors about the device's replies.
var ErrDevice = errors.New("kmatrix device")

// Records returns the recorded execs, oldest first.
func (d Device) Records() ([]Record, error) {
	b, err := os.ReadFile(d.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDevice, err)
	}
	return parseRecords(string(b))
}

func parseRecords(s string) ([]Record, error) {
	var out []Record
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			return out, fmt.Errorf("%w: record %d %q: want \"<seq> <pid> <parent> <comm>\"", ErrDevice, i+1, line)
		}
		var r Record
		var err1, err2, err3 error
		r.Seq, err1 = strconv.ParseUint(f[0], 10, 64)
		r.Pid, err2 = strconv.Atoi(f[1])
		r.Parent, err3 = strconv.Atoi(f[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return out, fmt.Errorf("%w: record %d %q: %w", ErrDevice, i+1, line, err)
		}
		r.Comm = f[3]
		out = append(out, r)
	}
	return out, nil
}

// Reset forgets every record.
func (d Device) Reset() error { return d.command("reset") }

// FilterParent makes the module record only execs whose parent has
// thread-group id tgid; 0 records every exec.
func (d Device) FilterParent(tgid int) error {
	return d.command("parent " + strconv.Itoa(tgid))
}

// TaskState asks the module for the state of the task with that pid.
func (d Device) TaskState(pid int) (TaskState, error) {
	f, err := os.OpenFile(d.Path, os.O_RDWR, 0)
	if err != nil {
		return TaskState{}, fmt.Errorf("%w: %w", ErrDevice, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("state " + strconv.Itoa(pid))); err != nil {
		return TaskState{}, fmt.Errorf("%w: state of pid %d: %w", ErrDevice, pid, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return TaskState{}, fmt.Errorf("%w: state of pid %d: %w", ErrDevice, pid, err)
	}
	return parseTaskState(string(b))
}

func parseTaskState(s string) (TaskState, error) {
	f := strings.Fields(s)
	if len(f) != 3 || len(f[2]) != 1 {
		return TaskState{}, fmt.Errorf("%w: state reply %q: want \"<pid> <raw> <char>\"", ErrDevice, s)
	}
	pid, err1 := strconv.Atoi(f[0])
	raw, err2 := strconv.ParseUint(f[1], 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return TaskState{}, fmt.Errorf("%w: state reply %q: want \"<pid> <raw> <char>\": %w", ErrDevice, s, err)
	}
	return TaskState{Pid: pid, Raw: uint32(raw), Char: f[2][0]}, nil
}

// Command sends one raw command ("reset", "parent N", "state N").
func (d Device) Command(cmd string) error { return d.command(cmd) }

func (d Device) command(cmd string) error {
	f, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDevice, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(cmd)); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrDevice, cmd, err)
	}
	return nil
}
