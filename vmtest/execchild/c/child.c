// kmatrix-child: the process guest tests exec when they need a process of
// their own (an exec to trace, a task in a known state). It is tiny and
// static, with no libc, because under TCG every exec of a Go test binary
// costs some 60 ms (its runtime starting up) and this one about 4 ms.
// x86-64 and arm64 Linux, the arches of the kernels kmatrix boots (built
// with gcc for x86-64, with clang and binutils' aarch64 ld for arm64).
//
// Usage: kmatrix-child MODE
//   exit   exit 0 at once
//   spawn  exec argv[0] as an "exit" child, wait for it, print its pid
//   sleep  block in pause(2): state S (TASK_INTERRUPTIBLE) until killed
//   stop   stop itself with SIGSTOP (state T), then sleep
//
// Build: go generate ./vmtest/execchild (see ../generate.go).

typedef unsigned long size_t;

#if defined(__x86_64__)
enum { SYS_write = 1, SYS_pause = 34, SYS_getpid = 39, SYS_fork = 57, SYS_execve = 59, SYS_exit = 60, SYS_wait4 = 61, SYS_kill = 62 };
#elif defined(__aarch64__)
// The generic syscall table: no fork (clone with SIGCHLD), no pause
// (ppoll with no descriptors and no timeout).
enum { SYS_ppoll = 73, SYS_exit = 93, SYS_kill = 129, SYS_getpid = 172, SYS_write = 64, SYS_clone = 220, SYS_execve = 221, SYS_wait4 = 260 };
enum { SIGCHLD = 17 };
#else
#error "kmatrix-child: x86-64 or arm64 only"
#endif
enum { SIGSTOP = 19 };

#if defined(__x86_64__)
static long sys(long n, long a, long b, long c, long d) {
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return ret;
}
#else
static long sys(long n, long a, long b, long c, long d) {
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}
#endif

static size_t len(const char *s) {
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static int eq(const char *a, const char *b) {
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void say(int fd, const char *s) { sys(SYS_write, fd, (long)s, len(s), 0); }

static __attribute__((noreturn)) void quit(int code) {
	for (;;)
		sys(SYS_exit, code, 0, 0, 0);
}

static __attribute__((noreturn)) void sleep_forever(void) {
	for (;;)
#if defined(__x86_64__)
		sys(SYS_pause, 0, 0, 0, 0);
#else
		sys(SYS_ppoll, 0, 0, 0, 0);
#endif
}

static void spawn(char **argv, char **envp) {
#if defined(__x86_64__)
	long pid = sys(SYS_fork, 0, 0, 0, 0);
#else
	long pid = sys(SYS_clone, SIGCHLD, 0, 0, 0);
#endif
	if (pid < 0) {
		say(2, "kmatrix-child spawn: fork failed\n");
		quit(1);
	}
	if (pid == 0) {
		char *args[] = {argv[0], "exit", 0};
		sys(SYS_execve, (long)argv[0], (long)args, (long)envp, 0);
		say(2, "kmatrix-child spawn: execve of argv[0] failed\n");
		quit(127);
	}
	int status = 0;
	if (sys(SYS_wait4, pid, (long)&status, 0, 0) != pid || status != 0) {
		say(2, "kmatrix-child spawn: the exit child failed\n");
		quit(1);
	}
	char buf[24];
	char *p = buf + sizeof buf;
	*--p = 0;
	*--p = '\n';
	do
		*--p = '0' + pid % 10;
	while (pid /= 10);
	say(1, p);
}

__attribute__((used)) void cmain(long *sp) {
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	const char *mode = argc > 1 ? argv[1] : "";
	if (eq(mode, "exit"))
		quit(0);
	if (eq(mode, "spawn")) {
		spawn(argv, envp);
		quit(0);
	}
	if (eq(mode, "stop")) {
		sys(SYS_kill, sys(SYS_getpid, 0, 0, 0, 0), SIGSTOP, 0, 0);
		sleep_forever();
	}
	if (eq(mode, "sleep"))
		sleep_forever();
	say(2, "kmatrix-child: unknown mode \"");
	say(2, mode);
	say(2, "\": want exit, spawn, sleep or stop\n");
	quit(2);
}

// The kernel enters with argc at the stack pointer; align the stack for
// the C ABI and pass that pointer to cmain (arm64's is aligned already).
#if defined(__x86_64__)
__asm__(".globl _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call cmain\n"
	"	hlt\n");
#else
__asm__(".globl _start\n"
	"_start:\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	mov x0, sp\n"
	"	bl cmain\n"
	"	brk #0\n");
#endif
