package kmod

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// TestClassifyLoad checks the classification of finit_module failures on
// the kernel messages that the kernels print for them (the real loads are
// in the guest tests).
func TestClassifyLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		errno  unix.Errno
		dmesg  []string
		kind   LoadErrorKind
		class  outcome.Outcome
		reason string
	}{
		{"vermagic", unix.ENOEXEC, []string{"kmatrix: version magic '6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ' should be '5.10.0-46-cloud-amd64 SMP mod_unload modversions '"},
			KindVermagic, outcome.LoadError, "wrong vermagic: kmatrix: version magic '6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ' should be '5.10.0-46-cloud-amd64 SMP mod_unload modversions '"},
		{"symbol versions", unix.ENOEXEC, []string{"kmatrix: disagrees about version of symbol module_layout"},
			KindVermagic, outcome.LoadError, "built for another kernel: kmatrix: disagrees about version of symbol module_layout"},
		{"struct module size", unix.ENOEXEC, []string{"module kmatrix: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time"},
			KindVermagic, outcome.LoadError, "built for another kernel: module kmatrix: .gnu.linkonce.this_module section size must match"},
		{"unknown symbols", unix.ENOENT, []string{"kmatrix: Unknown symbol kmatrix_nope (err -2)", "kmatrix: Unknown symbol other (err -2)", "kmatrix: Unknown symbol kmatrix_nope (err -2)"},
			KindUnknownSymbol, outcome.LoadError, "unknown symbol kmatrix_nope, other"},
		{"unsigned rejected", unix.EKEYREJECTED, []string{"Loading of unsigned module is rejected"},
			KindSignature, outcome.LoadError, "signature rejected: Loading of unsigned module is rejected"},
		{"unsigned rejected, EPERM", unix.EPERM, []string{"Loading of unsigned module is rejected"},
			KindSignature, outcome.LoadError, "signature rejected: Loading of unsigned module is rejected"},
		{"already loaded", unix.EEXIST, nil, KindAlreadyLoaded, outcome.LoadError, "a module of that name is already loaded"},
		{"not permitted", unix.EPERM, nil, KindNotPermitted, outcome.InfraError, "not permitted"},
		{"init failed", unix.ENOENT, []string{"kmatrix: no sched_process_exec tracepoint"}, KindOther, outcome.LoadError, "finit_module failed: kmatrix: no sched_process_exec tracepoint"},
		{"bad ELF", unix.ENOEXEC, nil, KindOther, outcome.LoadError, "not a loadable module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := classifyLoad("/kmatrix.ko", tc.errno, tc.dmesg)
			assert.Equal(t, tc.kind, e.Kind)
			assert.Equal(t, tc.class, e.Class)
			assert.Contains(t, e.Reason, tc.reason)
			assert.ErrorIs(t, e, tc.errno)
			assert.Contains(t, e.Error(), "/kmatrix.ko")
			assert.Contains(t, e.Error(), unix.ErrnoName(tc.errno))
		})
	}
}

func TestLoadBadInput(t *testing.T) {
	err := Load("/nonexistent/kmatrix.ko", "")
	assert.ErrorContains(t, err, "/nonexistent/kmatrix.ko")
	for _, name := range []string{"", "kmatrix.ko", "/sys/module/x", "a b"} {
		assert.ErrorContains(t, Unload(name), "want a module name as lsmod shows it", "name %q", name)
	}
}

func TestSplats(t *testing.T) {
	log := []string{
		"kmatrix: recording execs",
		"WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2",
		"BUG: kernel NULL pointer dereference, address: 0000000000000000",
		"Oops: 0002 [#1] PREEMPT SMP NOPTI",
		"random: crng init done",
		"x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'",
	}
	assert.Equal(t, log[1:4], Splats(log))
}

func TestKmsgText(t *testing.T) {
	assert.Equal(t, "kmatrix: hi", kmsgText("6,1234,5678,-;kmatrix: hi\n SUBSYSTEM=x\n"))
	assert.Equal(t, "kmatrix: hi", kmsgText("6,1234,5678,-,caller=T1;kmatrix: hi\n"))
}
