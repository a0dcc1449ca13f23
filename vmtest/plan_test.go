package vmtest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpecErrors(t *testing.T) {
	k := newest(t).Vmlinuz
	dir := t.TempDir()
	notExec := filepath.Join(dir, "data.bin")
	require.NoError(t, os.WriteFile(notExec, []byte("x"), 0o644))

	for _, tc := range []struct {
		name  string
		spec  Spec
		field string
		want  string
	}{
		{"relative guest path", Spec{Files: []File{{Data: []byte("x"), Guest: "etc/x"}}}, "Files[0]", `"etc/x" is not absolute`},
		{"guest root", Spec{Files: []File{{Data: []byte("x"), Guest: "/"}}}, "Files[0]", `"/" is the root directory`},
		{"reserved path", Spec{Files: []File{{Data: []byte("x"), Guest: "/init"}}}, "Files[0]", "/init is vmtest's own"},
		{"host and data", Spec{Files: []File{{Host: notExec, Data: []byte("x"), Guest: "/x"}}}, "Files[0]", "both Host"},
		{"missing host file", Spec{Files: []File{{Host: filepath.Join(dir, "nope"), Guest: "/x"}}}, "Files[0]", "no such file or directory"},
		{"host directory", Spec{Files: []File{{Host: dir, Guest: "/x"}}}, "Files[0]", "not a regular file"},
		{"same guest path twice", Spec{Files: []File{{Data: []byte("a"), Guest: "/x"}, {Data: []byte("b"), Guest: "/x/../x"}}}, "Files[1]", "already used by Files[0]"},
		{"empty command", Spec{Commands: []Command{{}}}, "Commands[0]", "command path is empty"},
		{"relative command", Spec{Commands: []Command{{Path: "./tool"}}}, "Commands[0]", `command path "./tool" is relative`},
		{"not on host", Spec{Commands: []Command{{Name: "x", Path: "no-such-tool-anywhere"}}}, `Commands[0] ("x")`, "not found in the host PATH"},
		{"host not executable", Spec{Commands: []Command{{Host: notExec}}}, "Commands[0]", "is not an executable file"},
		{"bad env", Spec{Commands: []Command{{Path: "/bin/x", Env: []string{"NOVALUE"}}}}, "Commands[0].Env", `"NOVALUE": want KEY=VALUE`},
		{"relative dir", Spec{Commands: []Command{{Path: "/bin/x", Dir: "work"}}}, "Commands[0].Dir", "is relative"},
		{"negative command timeout", Spec{Commands: []Command{{Path: "/bin/x", Timeout: -time.Second}}}, "Commands[0].Timeout", "negative"},
		{"negative timeout", Spec{Timeout: -1}, "Timeout", "negative"},
		{"tiny memory", Spec{MemoryMB: 16}, "MemoryMB", "too little"},
		{"stdin over the limit", Spec{Commands: []Command{{Path: "/bin/x", Stdin: io.LimitReader(zeros{}, MaxStdin+1)}}}, "Commands[0].Stdin", "more than 64 MiB: put the input in a File"},
		{"stdin that fails", Spec{Commands: []Command{{Path: "/bin/x", Stdin: iotest.ErrReader(errors.New("disk on fire"))}}}, "Commands[0].Stdin", "read: disk on fire"},
		{"command file clashes with a file", Spec{Files: []File{{Data: []byte("x"), Guest: "/bin/gp"}}, Commands: []Command{{Host: guestprog(t), Path: "/bin/gp"}}}, "Commands[0]", "Files[0] already places there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Kernel = k
			_, err := Run(t.Context(), tc.spec)
			require.ErrorIs(t, err, ErrInvalidSpec)
			var se *SpecError
			require.True(t, errors.As(err, &se), "%T", err)
			assert.Equal(t, tc.field, se.Field)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, "vmtest: "+tc.field+": ")
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestPlanShipsStdinAsAFile(t *testing.T) {
	p, err := newPlan(Spec{Kernel: newest(t).Vmlinuz, Commands: []Command{
		{Path: "/bin/a", Stdin: strings.NewReader("line 1\nline 2\n")},
		{Path: "/bin/b"},
		{Path: "/bin/c", Stdin: strings.NewReader("")},
	}})
	require.NoError(t, err)
	assert.Equal(t, "/vmtest/stdin/0", p.wire.Commands[0].Stdin)
	assert.Empty(t, p.wire.Commands[1].Stdin, "no Stdin: /dev/null")
	assert.Empty(t, p.wire.Commands[2].Stdin, "an empty Stdin is /dev/null too")
	var files []File
	for _, f := range p.files {
		if strings.HasPrefix(f.Guest, "/vmtest/stdin/") {
			files = append(files, f)
		}
	}
	assert.Equal(t, []File{{Guest: "/vmtest/stdin/0", Data: []byte("line 1\nline 2\n"), Mode: 0o644}}, files)
}

func TestSpecErrorUnwrapsItsCause(t *testing.T) {
	_, err := newPlan(Spec{Kernel: "/nonexistent/vmlinuz"})
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorIs(t, err, ErrInvalidSpec)
}

func TestPlanResolvesBareNames(t *testing.T) {
	p, err := newPlan(Spec{Kernel: newest(t).Vmlinuz, Commands: []Command{{Path: "uname"}, {Path: "uname", Args: []string{"-r"}}}})
	require.NoError(t, err)
	c := p.spec.Commands[0]
	assert.Equal(t, "uname", c.Name)
	assert.True(t, filepath.IsAbs(c.Path), c.Path)
	assert.Equal(t, c.Path, p.wire.Commands[0].Path)
	var guests []string
	for _, f := range p.files {
		guests = append(guests, f.Guest)
	}
	assert.Contains(t, guests, c.Path)
	assert.Contains(t, guests, "/lib64/ld-linux-x86-64.so.2")
	seen := map[string]bool{}
	for _, g := range guests {
		assert.False(t, seen[g], "%s once, though two commands need it", g)
		seen[g] = true
	}
}
