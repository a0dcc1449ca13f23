package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

// TestMain makes this test binary the programs the prestart tests start,
// chosen by the name it is run under (a prestarted process gets no
// arguments or environment of the test's): "aware" calls prestart.Await,
// "silent" never says it is ready.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "aware":
		ok, err := prestart.Await(func() { fmt.Println("warmed up") })
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		wd, _ := os.Getwd()
		fmt.Printf("prestarted=%v args=%s cwd=%s RUN=%s\n", ok, strings.Join(os.Args[1:], ","), wd, os.Getenv("RUN"))
		os.Exit(0)
	case "silent":
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// TestPrestartedProcesses: the init starts each prestart path before it
// parks; the one that says it is ready is released into the restored
// run's command of its path, with the run's arguments, environment and
// directory and with what it printed while it warmed up; one that exits
// without waiting, or is not ready in time, is a warning, and its command
// starts as usual; a second command of one path starts it afresh.
func TestPrestartedProcesses(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	bin := t.TempDir()
	aware, silent := filepath.Join(bin, "aware"), filepath.Join(bin, "silent")
	require.NoError(t, os.Symlink(self, aware))
	require.NoError(t, os.Symlink(self, silent))
	root := t.TempDir()
	run := wire.Spec{StreamLimit: 1 << 20, Commands: []wire.Command{
		{Name: "first", Path: aware, Args: []string{"x"}, Env: []string{"RUN=one"}, Dir: root + "/work", Prestart: true},
		{Name: "again", Path: aware, Args: []string{"y"}, Prestart: true},
		{Name: "true", Path: "/bin/true", Prestart: true},
		{Name: "silent", Path: silent, Prestart: true, Timeout: 100 * time.Millisecond},
	}}
	sys := &fakeSystem{root: root, goEvent: &wire.Event{Kind: wire.Go, Time: 1, Seed: []byte{1}}, run: runFile(t, run, nil)}
	p := &initProc{sys: sys, console: os.Stderr, root: root, prestartTimeout: 2 * time.Second}
	spec := wire.Spec{Park: true, Prestart: []string{aware, "/bin/true", silent}}
	evs := runProc(t, p, sys, spec)

	assert.Equal(t, "warmed up\nprestarted=true args=x cwd="+root+"/work RUN=one\n", output(evs, 0, 1))
	assert.Regexp(t, "^prestarted=false args=y cwd=\\S+ RUN=\n$", output(evs, 1, 1))
	assert.Equal(t, 0, exitOf(evs, 2).Code)
	assert.Equal(t, "timeout", exitOf(evs, 3).Err, "the silent one was killed before the park: its command starts it again")
	warnings := strings.Join(evs[1].Warnings, "\n")
	assert.Contains(t, warnings, "prestart /bin/true: it did not wait for its run")
	assert.Contains(t, warnings, "prestart "+silent+": not ready in time")
	assert.NotContains(t, warnings, aware)
}

// runProc runs p as runInit runs a new one.
func runProc(t *testing.T, p *initProc, sys *fakeSystem, spec wire.Spec) []*wire.Event {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	sys.spec = b
	err = p.run()
	p.finish(err)
	require.NoError(t, err)
	return decodeEvents(t, sys)
}
