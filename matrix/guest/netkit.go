package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"golang.org/x/sys/unix"
)

// Netkit device names in a program's own network namespace.
const (
	netkitPrimary = "kmx-nk0"
	netkitPeer    = "kmx-nk1"
)

// attachNetkit makes a netkit pair (Linux 6.7+, CONFIG_NETKIT) in a network
// namespace of the program's own, over rtnetlink (jsimonetti/rtnetlink, the
// library cilium/ebpf's own netkit tests use), and attaches the program to
// the primary device as primary or peer. A kernel without netkit cannot
// make the device: that is the object's requirement, reported as not
// supported with the version.
func attachNetkit(p *ebpf.Program, at ebpf.AttachType) (io.Closer, error) {
	c, err := inOwnNetns(func() (link.Link, string, error) {
		primary, peer, err := newNetkitPair()
		if err != nil {
			return nil, "", err
		}
		l, err := link.AttachNetkit(link.NetkitOptions{Program: p, Attach: at, Interface: primary})
		if err != nil {
			return nil, "", err
		}
		return &netkitLink{Link: l, primary: primary, peer: peer}, "netkit", nil
	})
	if err != nil {
		return nil, err
	}
	return &netkitAttachment{c.(*nsAttachment)}, nil
}

// netkitLink remembers the pair's interfaces for the trigger.
type netkitLink struct {
	link.Link
	primary, peer int
}

// netkitAttachment fires by sending a packet out of each device of the
// pair: a netkit program runs on its device's transmit.
type netkitAttachment struct{ *nsAttachment }

func (a *netkitAttachment) fire() error {
	nl := a.l.(*netkitLink)
	return a.ns.do(func() error {
		return errors.Join(sendRawIPv4(nl.primary), sendRawIPv4(nl.peer))
	})
}

func newNetkitPair() (primary, peer int, err error) {
	conn, err := rtnetlink.Dial(nil)
	if err != nil {
		return 0, 0, &infraError{fmt.Errorf("opening rtnetlink: %w", err)}
	}
	defer conn.Close()
	mode, pass := driver.NetkitModeL3, driver.NetkitPolicyPass
	err = conn.Link.New(&rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{
			Name: netkitPrimary,
			Info: &rtnetlink.LinkInfo{Kind: "netkit", Data: &driver.Netkit{
				Mode: &mode, Policy: &pass, PeerPolicy: &pass,
				PeerInfo: &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{Name: netkitPeer}},
			}},
		},
	})
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		// "Unknown device type": no netkit driver in this kernel.
		return 0, 0, fmt.Errorf("netkit devices need CONFIG_NETKIT (requires >= v6.7), and creating one failed (%v): %w", err, ebpf.ErrNotSupported)
	}
	if err != nil {
		return 0, 0, &infraError{fmt.Errorf("creating a netkit pair: %w", err)}
	}
	for _, name := range []string{netkitPrimary, netkitPeer} {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return 0, 0, &infraError{err}
		}
		if err := conn.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(ifc.Index), Flags: unix.IFF_UP, Change: unix.IFF_UP}); err != nil {
			return 0, 0, &infraError{fmt.Errorf("bringing %s up: %w", name, err)}
		}
		if name == netkitPrimary {
			primary = ifc.Index
		} else {
			peer = ifc.Index
		}
	}
	return primary, peer, nil
}

// sendRawIPv4 transmits one small IPv4/UDP packet out of interface ifindex
// through a packet socket (CONFIG_PACKET, built in), which goes through the
// device's transmit whatever the routes say.
func sendRawIPv4(ifindex int) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	pkt := make([]byte, 28) // IPv4 header + UDP header
	pkt[0], pkt[8], pkt[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	copy(pkt[12:16], []byte{10, 248, 0, 1})
	copy(pkt[16:20], []byte{10, 248, 0, 2})
	binary.BigEndian.PutUint16(pkt[24:], 8)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(pkt[i:]))
	}
	binary.BigEndian.PutUint16(pkt[10:], ^uint16(sum+sum>>16))
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}
	if err := unix.Sendto(fd, pkt, 0, to); err != nil && !errors.Is(err, syscall.ENOBUFS) {
		return fmt.Errorf("sending on interface %d: %w", ifindex, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
