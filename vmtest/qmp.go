package vmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// qmp is a client of QEMU's machine protocol on one end of a socketpair
// whose other end QEMU got as "-chardev socket,fd=N" (no socket file on
// disk, nothing to clean up). One command at a time; asynchronous events
// are kept for waitEvent.
type qmp struct {
	conn    *net.UnixConn
	replies chan qmpMessage
	events  chan qmpMessage
}

type qmpMessage struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	QMP   json.RawMessage `json:"QMP"`
}

// qmpPair returns the host's end (a *qmp, not yet greeted) and the file to
// hand QEMU.
func qmpPair() (*qmp, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: socketpair: %v", ErrInfra, err)
	}
	host := os.NewFile(uintptr(fds[0]), "qmp")
	defer host.Close()
	c, err := net.FileConn(host)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("%w: qmp socket: %v", ErrInfra, err)
	}
	q := &qmp{conn: c.(*net.UnixConn), replies: make(chan qmpMessage, 1), events: make(chan qmpMessage, 64)}
	return q, os.NewFile(uintptr(fds[1]), "qmp-qemu"), nil
}

// start reads QEMU's greeting and enters command mode.
func (q *qmp) start(ctx context.Context) error {
	go q.read()
	select {
	case m, ok := <-q.replies:
		if !ok {
			return errors.New("QMP: QEMU closed the monitor before its greeting")
		}
		if m.QMP == nil {
			return errors.New("QMP: no greeting")
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := q.do(ctx, "qmp_capabilities", nil)
	return err
}

func (q *qmp) read() {
	defer close(q.replies)
	defer close(q.events)
	br := bufio.NewReaderSize(q.conn, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		var m qmpMessage
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m.Event != "" {
			select {
			case q.events <- m:
			default: // nobody waits for that many: drop the oldest
				<-q.events
				q.events <- m
			}
			continue
		}
		q.replies <- m
	}
}

// do runs one command.
func (q *qmp) do(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	return q.doFD(ctx, cmd, args, -1)
}

// doFD runs one command, passing fd along with it (for getfd) when it is
// not -1.
func (q *qmp) doFD(ctx context.Context, cmd string, args any, fd int) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetWriteDeadline(dl)
	} else {
		q.conn.SetWriteDeadline(time.Time{})
	}
	if _, _, err := q.conn.WriteMsgUnix(append(b, '\n'), oob, nil); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	select {
	case m, ok := <-q.replies:
		if !ok {
			return nil, fmt.Errorf("QMP %s: QEMU closed the monitor", cmd)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s", cmd, m.Error.Desc)
		}
		return m.Return, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("QMP %s: %w", cmd, ctx.Err())
	}
}

// ignoreShared sets up a snapshotted machine's migration: the saving and
// the restoring QEMU both leave the shared RAM file out of the migration
// stream (x-ignore-shared), so that only the device state moves.
func (q *qmp) ignoreShared(ctx context.Context) error {
	if _, err := q.do(ctx, "migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}}}); err != nil {
		return fmt.Errorf("QEMU cannot leave shared RAM out of a migration: %w", err)
	}
	return nil
}

// waitEvent waits for one of the named events.
func (q *qmp) waitEvent(ctx context.Context, names ...string) (qmpMessage, error) {
	for {
		select {
		case m, ok := <-q.events:
			if !ok {
				return qmpMessage{}, fmt.Errorf("QMP: QEMU closed the monitor while waiting for %v", names)
			}
			for _, n := range names {
				if m.Event == n {
					return m, nil
				}
			}
		case <-ctx.Done():
			return qmpMessage{}, ctx.Err()
		}
	}
}

func (q *qmp) close() { q.conn.Close() }
