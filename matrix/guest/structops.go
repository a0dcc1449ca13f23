package guest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/matrix/outcome"
)

// fieldPrefixRE matches the "field Map0: " the lazy loader puts before an
// error: an artefact of how kmatrix loads, not the user's.
var fieldPrefixRE = regexp.MustCompile(`field (Map|Program)\d+: `)

// structOpsType is the kernel struct a struct_ops map implements
// ("tcp_congestion_ops", "sched_ext_ops").
func structOpsType(m *ebpf.MapSpec) string {
	if s, ok := btf.As[*btf.Struct](m.Value); ok {
		return s.Name
	}
	return ""
}

// structOpsPrograms are the programs m's function pointers name: cilium/ebpf
// sets their AttachTo to "<struct>:<member>".
func structOpsPrograms(spec *ebpf.CollectionSpec, m *ebpf.MapSpec) []*ebpf.ProgramSpec {
	prefix := structOpsType(m) + ":"
	var out []*ebpf.ProgramSpec
	for _, p := range spec.Programs {
		if p.Type == ebpf.StructOps && strings.HasPrefix(p.AttachTo, prefix) {
			out = append(out, p)
		}
	}
	return out
}

// structOps loads a struct_ops map with its programs and registers it: a
// sched_ext scheduler, a TCP congestion control. It is one item, reported
// as "<map>/load" and "<map>/attach", with a load result per program for
// its verifier figures and a run result per program afterwards.
func (r *runner) structOps(m *ebpf.MapSpec) {
	typ := structOpsType(m)
	progs := structOpsPrograms(r.spec, m)
	isLink := m.Flags&unix.BPF_F_LINK != 0
	section := ".struct_ops"
	if isLink {
		section = ".struct_ops.link"
	}
	res := func(stage Stage, start time.Time) ProgramResult {
		return ProgramResult{Program: m.Name, Section: section, Type: "StructOps map " + typ, Stage: stage,
			DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	}
	start := time.Now()
	var objs loadedObjects
	err := r.loadKfuncModules(progs...).err
	if err == nil {
		objs, err = r.load(progs, []string{m.Name})
	}
	if err != nil {
		lr := res(StageLoad, start)
		lr.Outcome = outcome.LoadError
		lr.Facts, lr.Message, lr.Log = loadFailure(err, &ebpf.ProgramSpec{Name: m.Name, Type: ebpf.StructOps}, r.spec.Types, r.opts.LogLines)
		lr.Message = fieldPrefixRE.ReplaceAllString(strings.Replace(lr.Message, "assign values: ", "", 1), "")
		var ie *infraError
		if errors.As(err, &ie) {
			lr.Outcome, lr.Facts.Class, lr.Message = outcome.InfraError, ClassKmatrix, ie.Error()
		} else if (errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, btf.ErrNotFound)) && strings.Contains(err.Error(), typ) {
			// "bpf_struct_ops_sched_ext_ops doesn't exist in kernel":
			// the kernel has no such struct_ops type (sched_ext needs
			// CONFIG_SCHED_CLASS_EXT, Linux 6.12+).
			lr.Facts.Class = ClassNotSupported
			lr.Message = fmt.Sprintf("this kernel has no struct_ops type %s (no bpf_struct_ops_%s in its BTF): %s", typ, typ, lr.Message)
		} else if isLink && errors.Is(err, unix.EINVAL) && strings.Contains(err.Error(), "map create") {
			// BPF_F_LINK on a struct_ops map arrived in Linux 6.4
			// (commit 68b04864ca42 "bpf: Create links for BPF struct_ops maps").
			lr.Facts.Class, lr.Facts.RequiresKernel = ClassNotSupported, version.StructOpsLink.SinceString()
			lr.Message = version.StructOpsLink.Needs() + ": " + lr.Message
		} else {
			r.explainKfunc(&lr, err)
		}
		r.emit(lr)
		return
	}
	sm := objs.maps[m.Name]
	l := &loaded{name: m.Name, section: section, typ: "StructOps map " + typ, objects: objs.closers, maps: objs.maps,
		point: "struct_ops " + typ}
	r.live = append(r.live, l)
	for _, p := range progs {
		prog := objs.progs[p.Name]
		pr := result(p, StageLoad, start)
		pr.Facts.Map = m.Name
		r.loadPass(&pr, prog)
		r.emit(pr)
		l.runs = append(l.runs, runTarget{p.Name, p.SectionName, p.Type.String(), prog})
	}
	lr := res(StageLoad, start)
	lr.Outcome = outcome.Pass
	lr.Message = fmt.Sprintf("loaded struct_ops map %s (%s) with %d programs", m.Name, typ, len(progs))
	r.emit(lr)

	start = time.Now()
	ar := res(StageAttach, start)
	ar.Facts.AttachPoint = l.point
	if isLink {
		lnk, err := link.AttachStructOps(link.StructOpsOptions{Map: sm})
		ar.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			ar.Outcome = outcome.AttachError
			ar.Facts, ar.Message = attachFailure(err, attachPlan{point: l.point})
			r.emit(ar)
			return
		}
		l.link = lnk
		ar.Facts.Variant = "struct_ops link"
		ar.Message = "registered: " + l.point + " (through a struct_ops link)"
	} else {
		// A .struct_ops map is registered by the update that fills it,
		// which the loader did; deleting its element unregisters it.
		l.registered = true
		l.unregister = func() error { return sm.Delete(uint32(0)) }
		ar.Facts.Variant = "struct_ops map update"
		ar.Message = "registered: " + l.point + " (when its map was filled; .struct_ops, not .struct_ops.link)"
	}
	ar.Outcome = outcome.Pass
	if typ == "tcp_congestion_ops" {
		if name := structOpsName(m); name != "" {
			l.fire = func() error { return tcpWithCongestion(name) }
		}
	}
	r.emit(ar)
}

// structOpsName is the "name" member of a struct_ops map's value (the name
// a TCP congestion control is selected by).
func structOpsName(m *ebpf.MapSpec) string {
	s, ok := btf.As[*btf.Struct](m.Value)
	if !ok || len(m.Contents) == 0 {
		return ""
	}
	data, ok := m.Contents[0].Value.([]byte)
	if !ok {
		return ""
	}
	for _, mem := range s.Members {
		if mem.Name != "name" {
			continue
		}
		off := int(mem.Offset.Bytes())
		if off >= len(data) {
			return ""
		}
		b := data[off:]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	return ""
}

// tcpWithCongestion makes a loopback TCP connection that uses the named
// congestion control (TCP_CONGESTION), so a struct_ops one runs.
func tcpWithCongestion(name string) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 64))
			c.Close()
		}
	}()
	var serr error
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name) })
		return nil
	}}
	c, err := d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if serr != nil {
		return fmt.Errorf("TCP_CONGESTION %s: %w", name, serr)
	}
	_, err = c.Write(bytes.Repeat([]byte("k"), 64<<10))
	return err
}
