package guesttest

import (
	"net"
	"os"
	"syscall"
	"testing"
)

func guestOnly(t *testing.T) {
	if os.Getenv("VMTEST_GUEST") != "1" {
		t.Skip("runs inside a vmtest guest, started by vmtest's TestGoTestInGuest")
	}
}

func TestKernelRelease(t *testing.T) {
	guestOnly(t)
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	t.Logf("release %s", b)
	if want := os.Getenv("WANT_RELEASE"); string(b) != want {
		t.Errorf("uname release %q, want %q", b, want)
	}
}

func TestGuestSetup(t *testing.T) {
	guestOnly(t)
	t.Run("memlock", func(t *testing.T) {
		var r syscall.Rlimit
		if err := syscall.Getrlimit(8 /* RLIMIT_MEMLOCK */, &r); err != nil {
			t.Fatal(err)
		}
		if r.Cur != ^uint64(0) {
			t.Errorf("RLIMIT_MEMLOCK is %d, want unlimited", r.Cur)
		}
	})
	t.Run("bpffs", func(t *testing.T) {
		var s syscall.Statfs_t
		if err := syscall.Statfs("/sys/fs/bpf", &s); err != nil {
			t.Fatal(err)
		}
		if s.Type != 0xcafe4a11 {
			t.Errorf("/sys/fs/bpf has fs magic %#x, want bpffs", s.Type)
		}
	})
	t.Run("loopback", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

func TestFailsOnPurpose(t *testing.T) {
	guestOnly(t)
	t.Log("about to fail")
	t.Error("failing on purpose")
}

func TestSkipsOnPurpose(t *testing.T) {
	guestOnly(t)
	t.Skip("skipping on purpose")
}

func TestCrashesOnPurpose(t *testing.T) {
	guestOnly(t)
	if os.Getenv("VMTEST_CRASH") != "1" {
		t.Skip("crashes only when VMTEST_CRASH=1")
	}
	t.Log("about to crash")
	var p *struct{ n int }
	t.Log(p.n) // panics: nil pointer dereference, as a real crashing guest test would
}
