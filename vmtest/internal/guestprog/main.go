// Command guestprog is what vmtest's own tests run inside guests: small,
// static, and able to misbehave on purpose (crash the kernel, hang, flood
// its output), which no tool in a bare initramfs does.
//
//	guestprog echo ARGS...       print ARGS, the environment and the working directory
//	guestprog exit N             exit with status N
//	guestprog hang               sleep forever
//	guestprog flood BYTES        write BYTES bytes of numbered lines to stdout, then "END"
//	guestprog sysrq C            write C to /proc/sysrq-trigger ("c" crashes the kernel)
//	guestprog stat PATH...       report whether each path exists
//	guestprog mounts             print /proc/self/mounts
//	guestprog cat                copy stdin to stdout, then say how many bytes on stderr
//	guestprog write PATH DATA    write DATA to PATH (a file, a sysctl)
//	guestprog read PATH...       print each file
//	guestprog random N           print N bytes of /dev/urandom in hex
//	guestprog now                print the wall clock (Unix ns)
//	guestprog insmod PATH        load the kernel module PATH (finit_module)
//	guestprog whoami             print whether it was prestarted, its pid, ARGS, cwd, $RUN, 8 random bytes and the clock
//
// It calls prestart.Await first, so a test can prestart it (the warm-up
// prints "warmed up"), and whoami tells a prestarted process from a fresh one.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

func main() {
	prestarted, err := prestart.Await(func() { fmt.Println("warmed up") })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guestprog echo|exit|hang|flood|sysrq|stat|mounts|cat ...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "echo":
		wd, _ := os.Getwd()
		fmt.Printf("args=%s\n", strings.Join(args, ","))
		fmt.Printf("cwd=%s\n", wd)
		for _, kv := range os.Environ() {
			fmt.Printf("env %s\n", kv)
		}
		fmt.Fprintln(os.Stderr, "to stderr")
	case "whoami":
		wd, _ := os.Getwd()
		random := make([]byte, 8)
		if _, err := unix.Getrandom(random, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("prestarted=%v pid=%d args=%s cwd=%s RUN=%s random=%x now=%d\n", prestarted, os.Getpid(), strings.Join(args, ","), wd,
			os.Getenv("RUN"), random, time.Now().UnixNano())
	case "exit":
		n, _ := strconv.Atoi(args[0])
		os.Exit(n)
	case "hang":
		fmt.Println("hanging")
		for {
			time.Sleep(time.Hour)
		}
	case "flood":
		n, _ := strconv.ParseInt(args[0], 10, 64)
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		var written int64
		for i := 0; written < n; i++ {
			k, _ := fmt.Fprintf(w, "line %09d of the flood..............................................\n", i)
			written += int64(k)
		}
		fmt.Fprintln(w, "END")
		w.Flush()
	case "sysrq":
		if err := os.WriteFile("/proc/sysrq-trigger", []byte(args[0]), 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		time.Sleep(10 * time.Second)
		fmt.Println("still alive after sysrq", args[0])
	case "stat":
		for _, p := range args {
			_, err := os.Stat(p)
			fmt.Printf("%s exists=%v\n", p, err == nil)
		}
	case "cat":
		n, err := io.Copy(os.Stdout, os.Stdin)
		fmt.Fprintf(os.Stderr, "copied %d bytes\n", n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "release": // uname -r, for guests whose host has no uname of their arch
		b, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "mounts":
		b, err := os.ReadFile("/proc/self/mounts")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "write":
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "read":
		for _, p := range args {
			b, err := os.ReadFile(p)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Stdout.Write(b)
		}
	case "random":
		n, _ := strconv.Atoi(args[0])
		b := make([]byte, n)
		f, err := os.Open("/dev/urandom")
		if err == nil {
			_, err = io.ReadFull(f, b)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(hex.EncodeToString(b))
	case "insmod":
		f, err := os.Open(args[0])
		if err == nil {
			err = unix.FinitModule(int(f.Fd()), "", 0)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "insmod:", err)
			os.Exit(1)
		}
	case "now":
		fmt.Println(time.Now().UnixNano())
	default:
		fmt.Fprintf(os.Stderr, "guestprog: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
