package virtual_test

// Peer checks: the tools custodians and administrators already use,
// yubico-piv-tool and OpenSC, must see the virtual card as a YubiKey and
// agree with piv-go about its version, serial, keys and certificates.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"custos/smartcard/virtual"
	"custos/smartcard/virtual/virtualtest"

	"github.com/go-piv/piv-go/v2/piv"
)

// peerTool finds a peer tool: skips the test without it, fails it under
// CUSTOS_INTEGRATION=1.
func peerTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (Debian package %s)", name, pkg)
	if os.Getenv("CUSTOS_INTEGRATION") == "1" {
		t.Fatalf("%s; required under CUSTOS_INTEGRATION=1", msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

// run runs a peer tool and returns its standard output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s%s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// peerCard is a card prepared with piv-go: keys with certificates in 9a
// (P-256) and 9c (P-384), and a key without certificate in 9d.
type peerCard struct {
	in    virtualtest.Inserted
	certs map[piv.Slot]*x509.Certificate
}

func preparePeerCard(t *testing.T) peerCard {
	t.Helper()
	in := virtualtest.Start(t, 1)[0]
	yk, err := piv.Open(in.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer yk.Close()

	pc := peerCard{in: in, certs: map[piv.Slot]*x509.Certificate{}}
	for slot, alg := range map[piv.Slot]piv.Algorithm{
		piv.SlotAuthentication: piv.AlgorithmEC256,
		piv.SlotSignature:      piv.AlgorithmEC384,
		piv.SlotKeyManagement:  piv.AlgorithmEC256,
	} {
		pub, err := yk.GenerateKey(piv.DefaultManagementKey, slot, piv.Key{
			Algorithm: alg, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
		if err != nil {
			t.Fatal(err)
		}
		if slot == piv.SlotKeyManagement {
			continue
		}
		cert := selfSigned(t, pub, "custos peer "+slot.String(), 0)
		if err := yk.SetCertificate(piv.DefaultManagementKey, slot, cert); err != nil {
			t.Fatal(err)
		}
		pc.certs[slot] = cert
	}
	return pc
}

func TestYubicoPIVTool(t *testing.T) {
	tool := peerTool(t, "yubico-piv-tool", "yubico-piv-tool")
	pc := preparePeerCard(t)
	out := run(t, tool, "-r", pc.in.Reader, "-a", "status")
	t.Logf("yubico-piv-tool -a status:\n%s", out)
	for _, want := range []string{
		"Version:\t5.7.1\n",
		fmt.Sprintf("Serial Number:\t%d\n", pc.in.Serial),
		"PIN tries left:\t3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	for slot, cert := range pc.certs {
		section := out[strings.Index(out, "Slot "+slot.String()+":"):]
		if !strings.Contains(section, "CN=custos peer "+slot.String()) {
			t.Errorf("slot %s: status does not show the certificate subject", slot)
		}
		if !strings.Contains(strings.ToLower(section), fmt.Sprintf("%x", sha256sum(cert.Raw))) {
			t.Errorf("slot %s: status does not show the certificate fingerprint", slot)
		}
	}

	// yubico-piv-tool reads the certificate back byte for byte.
	for slot, cert := range pc.certs {
		pemOut := run(t, tool, "-r", pc.in.Reader, "-a", "read-certificate", "-s", slot.String())
		block, _ := pem.Decode([]byte(pemOut))
		if block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
			t.Errorf("slot %s: yubico-piv-tool read another certificate", slot)
		}
	}
}

func TestOpenSC(t *testing.T) {
	tool := peerTool(t, "pkcs15-tool", "opensc")
	opensc := peerTool(t, "opensc-tool", "opensc")
	pc := preparePeerCard(t)

	// Raw APDUs through OpenSC: version and serial.
	out := run(t, opensc, "-r", pc.in.Reader, "-s", "00 A4 04 00 05 A0 00 00 03 08", "-s", "00 FD 00 00", "-s", "00 F8 00 00")
	t.Logf("opensc-tool -s:\n%s", out)
	serial := fmt.Sprintf("%02X %02X %02X %02X", byte(pc.in.Serial>>24), byte(pc.in.Serial>>16), byte(pc.in.Serial>>8), byte(pc.in.Serial))
	for _, want := range []string{"05 07 01", serial} {
		if !strings.Contains(out, want) {
			t.Errorf("opensc-tool output lacks %q", want)
		}
	}

	certs := run(t, tool, "-r", pc.in.Reader, "--list-certificates")
	t.Logf("pkcs15-tool --list-certificates:\n%s", certs)
	keys := run(t, tool, "-r", pc.in.Reader, "--list-keys")
	t.Logf("pkcs15-tool --list-keys:\n%s", keys)

	dir := t.TempDir()
	for slot, cert := range pc.certs {
		id := map[piv.Slot]string{piv.SlotAuthentication: "01", piv.SlotSignature: "02"}[slot]
		file := filepath.Join(dir, slot.String()+".pem")
		run(t, tool, "-r", pc.in.Reader, "--read-certificate", id, "-o", file)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
			t.Errorf("slot %s: OpenSC read another certificate", slot)
		}
		if !strings.Contains(certs, fmt.Sprintf("%X", cert.SerialNumber.Bytes())) {
			t.Errorf("slot %s: --list-certificates does not show serial %X", slot, cert.SerialNumber.Bytes())
		}
	}

	// OpenSC signs with the card: key 01 is slot 9a. The PIN goes
	// through standard input, never argv.
	digest := sha256.Sum256([]byte("signed by OpenSC"))
	in, sig := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	if err := os.WriteFile(in, digest[:], 0o600); err != nil {
		t.Fatal(err)
	}
	crypt := exec.Command(peerTool(t, "pkcs15-crypt", "opensc"), "-r", pc.in.Reader, "--sign",
		"-k", "01", "--sha-256", "-f", "sequence", "-p", "-", "-i", in, "-o", sig)
	crypt.Stdin = strings.NewReader(piv.DefaultPIN + "\n")
	if out, err := crypt.CombinedOutput(); err != nil {
		t.Fatalf("pkcs15-crypt: %v\n%s", err, out)
	}
	der, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pc.certs[piv.SlotAuthentication].PublicKey.(*ecdsa.PublicKey), digest[:], der) {
		t.Error("OpenSC's signature with slot 9a does not verify")
	}

	// OpenSC's keys: the slots with certificates, with their curve size.
	for _, want := range []string{
		"FieldLength    : 256\n\tKey ref        : 154 (0x9A)",
		"FieldLength    : 384\n\tKey ref        : 156 (0x9C)",
	} {
		if !strings.Contains(keys, want) {
			t.Errorf("--list-keys lacks %q", want)
		}
	}
}

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

// yubico-piv-tool 2.2 predates firmware 5.7 and assumes a Triple-DES
// management key, as on a 5.4 YubiKey: there it authenticates, generates
// a key and stores a certificate, and piv-go reads both. (Its
// selfsign-certificate action fails with OpenSSL 3 on real YubiKeys too,
// Yubico/yubico-piv-tool#388, so the certificate is made here.)
func TestYubicoPIVToolWrites(t *testing.T) {
	tool := peerTool(t, "yubico-piv-tool", "yubico-piv-tool")
	in := virtualtest.Start(t, 1, virtualtest.WithCardOptions(virtual.WithVersion(5, 4, 3)))[0]
	dir := t.TempDir()
	pubFile, certFile := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "cert.pem")
	r := []string{"-r", in.Reader}

	run(t, tool, append(r, "-a", "generate", "-s", "9e", "-A", "ECCP256", "-o", pubFile)...)
	pubPEM, _ := os.ReadFile(pubFile)
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		t.Fatalf("yubico-piv-tool wrote no public key: %q", pubPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, pub, "peer written", 0)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, tool, append(r, "-a", "import-certificate", "-s", "9e", "-i", certFile)...)

	yk, err := piv.Open(in.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer yk.Close()
	info, err := yk.KeyInfo(piv.SlotCardAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.(*ecdsa.PublicKey).Equal(info.PublicKey) {
		t.Error("piv-go and yubico-piv-tool see different public keys")
	}
	got, err := yk.Certificate(piv.SlotCardAuthentication)
	if err != nil || !got.Equal(cert) {
		t.Fatalf("piv-go read %v, %v", got, err)
	}
	// The key signs for piv-go as yubico-piv-tool made it.
	priv, err := yk.PrivateKey(piv.SlotCardAuthentication, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
	if err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, pub, priv)
}
