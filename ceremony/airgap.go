package ceremony

import (
	"fmt"
	"net"
	"strings"
)

// NetInterface is a network interface as the air-gap check sees it.
type NetInterface struct {
	Name     string
	Up       bool
	Loopback bool
	Addrs    []string
}

// InterfaceLister lists the machine's network interfaces. Tests replace
// it; SystemInterfaces asks the kernel.
type InterfaceLister func() ([]NetInterface, error)

// SystemInterfaces lists the interfaces of this machine.
func SystemInterfaces() ([]NetInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	var out []NetInterface
	for _, i := range ifs {
		ni := NetInterface{Name: i.Name, Up: i.Flags&net.FlagUp != 0,
			Loopback: i.Flags&net.FlagLoopback != 0}
		if addrs, err := i.Addrs(); err == nil {
			for _, a := range addrs {
				ni.Addrs = append(ni.Addrs, a.String())
			}
		}
		out = append(out, ni)
	}
	return out, nil
}

// NetworkUpError says the machine is not air-gapped: a network interface
// other than loopback is up.
type NetworkUpError struct{ Interfaces []NetInterface }

func (e *NetworkUpError) Error() string {
	var names []string
	for _, i := range e.Interfaces {
		names = append(names, i.Name)
	}
	return fmt.Sprintf("network interface %s is up: this machine is not air-gapped", strings.Join(names, ", "))
}

// AirGap is the outcome of the air-gap check.
type AirGap struct {
	Up      []NetInterface // non-loopback interfaces that are up
	Allowed bool           // the ceremony goes on anyway (--allow-network)
}

// CheckAirGap lists the interfaces and refuses any non-loopback one that
// is up, unless allow is set, in which case the result says so for the
// record.
func CheckAirGap(list InterfaceLister, allow bool) (*AirGap, error) {
	if list == nil {
		list = SystemInterfaces
	}
	ifs, err := list()
	if err != nil {
		return nil, err
	}
	ag := &AirGap{}
	for _, i := range ifs {
		if i.Up && !i.Loopback {
			ag.Up = append(ag.Up, i)
		}
	}
	if len(ag.Up) > 0 && !allow {
		return nil, &NetworkUpError{ag.Up}
	}
	ag.Allowed = len(ag.Up) > 0
	return ag, nil
}

func (a *AirGap) String() string {
	if len(a.Up) == 0 {
		return "air-gapped: no network interface but loopback is up"
	}
	return "NOT air-gapped, allowed with --allow-network: " + (&NetworkUpError{a.Up}).Error()
}
