package hsm

import (
	"fmt"
	"sort"

	"github.com/miekg/pkcs11"
)

// mechNames names the mechanisms this package uses, for messages.
var mechNames = map[uint]string{
	pkcs11.CKM_AES_ECB:               "CKM_AES_ECB",
	pkcs11.CKM_AES_CMAC:              "CKM_AES_CMAC",
	pkcs11.CKM_SHA256_HMAC:           "CKM_SHA256_HMAC",
	pkcs11.CKM_SHA256_RSA_PKCS:       "CKM_SHA256_RSA_PKCS",
	pkcs11.CKM_ECDSA:                 "CKM_ECDSA",
	ckmEdDSA:                         "CKM_EDDSA",
	pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN: "CKM_RSA_PKCS_KEY_PAIR_GEN",
	pkcs11.CKM_RSA_PKCS_OAEP:         "CKM_RSA_PKCS_OAEP",
	pkcs11.CKM_AES_KEY_WRAP_PAD:      "CKM_AES_KEY_WRAP_PAD",
	pkcs11.CKM_AES_KEY_WRAP:          "CKM_AES_KEY_WRAP",
	pkcs11.CKM_RSA_AES_KEY_WRAP:      "CKM_RSA_AES_KEY_WRAP",
}

// MechanismName names a mechanism, in hex if this package does not know
// it.
func MechanismName(m uint) string {
	if s, ok := mechNames[m]; ok {
		return s
	}
	return fmt.Sprintf("mechanism 0x%X", m)
}

// Operation flags a mechanism must offer.
const (
	opEncrypt = pkcs11.CKF_ENCRYPT
	opSign    = pkcs11.CKF_SIGN
	opUnwrap  = pkcs11.CKF_UNWRAP
	opKeyGen  = pkcs11.CKF_GENERATE_KEY_PAIR
)

var opNames = map[uint]string{
	opEncrypt: "encrypt", opSign: "sign", opUnwrap: "unwrap",
	opKeyGen: "generate key pair",
}

// need is one mechanism and operation the work ahead needs.
type need struct {
	mech uint
	op   uint
}

func (n need) String() string {
	if n.op == 0 {
		return MechanismName(n.mech)
	}
	return fmt.Sprintf("%s (%s)", MechanismName(n.mech), opNames[n.op])
}

// mechanisms reads the token's mechanism list once per session.
func (s *Session) mechanisms() (map[uint]pkcs11.MechanismInfo, error) {
	if s.mechs != nil {
		return s.mechs, nil
	}
	list, err := s.p.GetMechanismList(s.info.slot)
	if err != nil {
		return nil, fmt.Errorf("listing mechanisms of %v: %w", s.info, err)
	}
	mechs := map[uint]pkcs11.MechanismInfo{}
	for _, m := range list {
		info, err := s.p.GetMechanismInfo(s.info.slot,
			[]*pkcs11.Mechanism{m})
		if err != nil {
			return nil, fmt.Errorf("reading %s on %v: %w",
				MechanismName(m.Mechanism), s.info, err)
		}
		mechs[m.Mechanism] = info
	}
	s.mechs = mechs
	return mechs, nil
}

// has reports whether the token offers mechanism m for operation op, or
// at all when op is 0.
func (s *Session) has(m, op uint) (bool, error) {
	mechs, err := s.mechanisms()
	if err != nil {
		return false, err
	}
	info, ok := mechs[m]
	return ok && (op == 0 || info.Flags&op != 0), nil
}

// require fails with a MechanismError naming every need the token lacks.
func (s *Session) require(needs []need) error {
	var missing []string
	seen := map[need]bool{}
	for _, n := range needs {
		if seen[n] {
			continue
		}
		seen[n] = true
		ok, err := s.has(n.mech, n.op)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, n.String())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return &MechanismError{Token: s.info.String(), Missing: missing}
}

// signMech is the mechanism that proves a private key of kind k.
func signMech(k Kind) uint {
	switch k {
	case KindRSA:
		return pkcs11.CKM_SHA256_RSA_PKCS
	case KindEd25519:
		return ckmEdDSA
	}
	return pkcs11.CKM_ECDSA
}
