package virtual

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge what arrives on conn at once. vpcd
// sends a message's length and its body in two writes; with Nagle's
// algorithm on its side and delayed acknowledgement on ours, every
// command would wait about 40 ms for the body. The option does not
// stick, so it is set again before each read.
func quickAck(conn net.Conn) {
	tc, isTCP := conn.(*net.TCPConn)
	if !isTCP {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
