package hsm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// Short names for the miekg/pkcs11 types the interface below uses.
type (
	sessionH = pkcs11.SessionHandle
	objectH  = pkcs11.ObjectHandle
	attrList = []*pkcs11.Attribute
	mechList = []*pkcs11.Mechanism
)

// p11 is the part of a PKCS#11 module this package calls. *pkcs11.Ctx
// satisfies it; tests wrap it to inject faults into a real module.
type p11 interface {
	Initialize(opts ...pkcs11.InitializeOption) error
	Finalize() error
	GetInfo() (pkcs11.Info, error)
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetSlotInfo(slot uint) (pkcs11.SlotInfo, error)
	GetTokenInfo(slot uint) (pkcs11.TokenInfo, error)
	GetMechanismList(slot uint) (mechList, error)
	GetMechanismInfo(slot uint, m mechList) (pkcs11.MechanismInfo, error)
	OpenSession(slot uint, flags uint) (sessionH, error)
	CloseSession(sh sessionH) error
	Login(sh sessionH, userType uint, pin string) error
	CreateObject(sh sessionH, t attrList) (objectH, error)
	DestroyObject(sh sessionH, o objectH) error
	GetAttributeValue(sh sessionH, o objectH, a attrList) (attrList, error)
	FindObjectsInit(sh sessionH, t attrList) error
	FindObjects(sh sessionH, max int) ([]objectH, bool, error)
	FindObjectsFinal(sh sessionH) error
	EncryptInit(sh sessionH, m mechList, o objectH) error
	Encrypt(sh sessionH, msg []byte) ([]byte, error)
	SignInit(sh sessionH, m mechList, o objectH) error
	Sign(sh sessionH, msg []byte) ([]byte, error)
	GenerateKeyPair(sh sessionH, m mechList,
		pub, priv attrList) (objectH, objectH, error)
	UnwrapKey(sh sessionH, m mechList, key objectH, wrapped []byte,
		t attrList) (objectH, error)
}

// wrapModule lets tests put a fault-injecting layer between a session and
// its module. It is the identity outside tests.
var wrapModule = func(p p11) p11 { return p }

// module is one loaded PKCS#11 library. The registry keeps one per path
// so the process calls C_Initialize once per module and C_Finalize when
// the last user releases it.
type module struct {
	path  string
	ctx   *pkcs11.Ctx
	refs  int
	owned bool // we initialised it, so we finalise it
}

var registry = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

// loadModule returns the module at path, loading and initialising it on
// first use. Every successful call must be paired with release.
func loadModule(path string) (*module, error) {
	canon, err := canonicalModule(path)
	if err != nil {
		return nil, err
	}
	registry.Lock()
	defer registry.Unlock()
	if m, ok := registry.m[canon]; ok {
		m.refs++
		return m, nil
	}

	ctx := pkcs11.New(canon)
	if ctx == nil {
		return nil, &ModuleError{Path: canon,
			Reason: "not a PKCS#11 library"}
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("initialising module %s: %w", canon, err)
		}
		// Someone else in this process initialised it (not this package:
		// the registry would have it). Use it, and leave it to them.
		owned = false
	}
	m := &module{path: canon, ctx: ctx, refs: 1, owned: owned}
	registry.m[canon] = m
	return m, nil
}

// release drops one reference; the last one finalises and unloads.
func (m *module) release() error {
	registry.Lock()
	defer registry.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(registry.m, m.path)
	var err error
	if m.owned {
		if e := m.ctx.Finalize(); e != nil {
			err = fmt.Errorf("finalising module %s: %w", m.path, e)
		}
	}
	m.ctx.Destroy()
	return err
}

// loadedModules counts modules still loaded; tests use it to prove every
// path released what it loaded.
func loadedModules() int {
	registry.Lock()
	defer registry.Unlock()
	return len(registry.m)
}

func canonicalModule(path string) (string, error) {
	if path == "" {
		return "", errors.New("no PKCS#11 module: add " +
			"?module-path=/path/to/module.so to the URI")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", &ModuleError{Path: path, Reason: err.Error()}
	}
	canon, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return "", &ModuleError{Path: path, Reason: "no such file"}
	}
	if err != nil {
		return "", &ModuleError{Path: path, Reason: err.Error()}
	}
	if fi, err := os.Stat(canon); err != nil || !fi.Mode().IsRegular() {
		return "", &ModuleError{Path: path, Reason: "not a regular file"}
	}
	return canon, nil
}

// isRV reports whether err is the PKCS#11 return value rv.
func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
