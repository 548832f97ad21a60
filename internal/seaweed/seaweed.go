// Package seaweed runs SeaweedFS on loopback as a peer for sealfs's
// benchmarks: one `weed server` (master, volume server, filer and, if asked,
// the S3 gateway over HTTPS) on a data directory of the caller's, and `weed
// mount` of its filer. It owns the child processes and nothing else. What
// they write goes into the directories it is given: data, logs and the
// local sockets SeaweedFS can be told to put elsewhere; the gRPC sockets it
// always makes in /tmp are removed when the server stops.
//
// The weed command is the pinned SeaweedFS build (Version). `go install
// Module/weed@Version` is refused (the module's go.mod has a replace
// directive), so `make weed` builds the same version from the module
// proxy's copy, as its own main module, into bin/weed.
package seaweed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sealfs/sealfs/internal/freeport"
	"github.com/sealfs/sealfs/internal/mountinfo"
)

// Module and Version name the SeaweedFS source the benchmarks measure.
const (
	Module  = "github.com/seaweedfs/seaweedfs"
	Version = "v0.0.0-20261109003541-7506e5f91cd6"
)

// Binary finds the weed command and returns its absolute path: path if
// it is not empty, else weed on PATH, else bin/weed (where make weed puts
// it).
func Binary(path string) (string, error) {
	if path == "" {
		if p, err := exec.LookPath("weed"); err == nil {
			path = p
		} else if _, err := os.Stat(filepath.Join("bin", "weed")); err == nil {
			path = filepath.Join("bin", "weed")
		} else {
			return "", fmt.Errorf("no weed command on PATH or at bin/weed (make weed builds %s@%s)", Module, Version)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file", path)
	}
	return filepath.Abs(path)
}

// Options says how to run the server.
type Options struct {
	Dir string // data directory; created if missing

	// S3 starts the S3 gateway over HTTPS with this certificate and key,
	// and one identity with full rights (AccessKey, SecretKey). Its KMS is
	// SeaweedFS's own local provider, so that a bucket's default
	// encryption can be aws:kms.
	S3                   bool
	CertFile, KeyFile    string
	AccessKey, SecretKey string

	// EncryptVolumeData has the filer encrypt every chunk it stores (each
	// with its own key, kept in the filer's metadata): the encryption its
	// mount has.
	EncryptVolumeData bool

	// Fsync sets the filer rule that every write under / is synced by the
	// volume server before it is acknowledged (SeaweedFS's default is not
	// to sync).
	Fsync bool

	Log io.Writer // the server's output; nil discards it
}

// Server is one running `weed server`.
type Server struct {
	bin    string
	cmd    *exec.Cmd
	done   chan struct{}
	master string // host:port.grpcport, SeaweedFS's form of an address with its gRPC port
	filer  string
	logDir string // every weed process's log files (glog's default is /tmp)
	// sockets are the gRPC sockets weed server makes in /tmp, whatever
	// its flags say, one per service; Stop removes them.
	sockets []string
	// S3 is the S3 gateway's host:port (HTTPS), when Options.S3.
	S3 string
}

// Start runs `weed server` with opts and waits, up to a minute, until the
// filer answers, a volume server has joined the master and (with S3) the
// gateway accepts connections.
func Start(bin string, opts Options) (*Server, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := freeport.Ports(8)
	if err != nil {
		return nil, err
	}
	args, err := serverArgs(opts, ports)
	if err != nil {
		return nil, err
	}
	s := &Server{
		bin:    bin,
		done:   make(chan struct{}),
		master: fmt.Sprintf("127.0.0.1:%d.%d", ports[0], ports[1]),
		filer:  fmt.Sprintf("127.0.0.1:%d.%d", ports[4], ports[5]),
		logDir: filepath.Join(opts.Dir, "logs"),
		sockets: []string{grpcSocket("master", ports[1]), grpcSocket("volume", ports[3]),
			grpcSocket("filer", ports[5])},
	}
	if opts.S3 {
		s.S3 = fmt.Sprintf("127.0.0.1:%d", ports[6])
		s.sockets = append(s.sockets, grpcSocket("s3", ports[7]))
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, append([]string{"-logdir=" + s.logDir}, args...)...)
	s.cmd.Dir = opts.Dir
	s.cmd.Stdout, s.cmd.Stderr = opts.Log, opts.Log
	// The server goes with the benchmark, however it ends.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.ready(ports, time.Minute); err != nil {
		s.Stop()
		return nil, err
	}
	if opts.Fsync {
		if _, err := s.shell("fs.configure -locationPrefix=/ -fsync -apply"); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// grpcSocket is where weed server puts the gRPC socket of a service.
func grpcSocket(service string, port int) string {
	return fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", service, port)
}

// serverArgs is the `weed server` command line for opts on ports: master,
// its gRPC, volume, its gRPC, filer, its gRPC, S3, its gRPC. It writes the
// S3 gateway's configuration (identity and KMS) into opts.Dir.
func serverArgs(opts Options, ports []int) ([]string, error) {
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{"server",
		"-dir=" + opts.Dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + p(0), "-master.port.grpc=" + p(1),
		// Volumes of 1 GiB, up to 64 of them: a benchmark's data fits,
		// and each bucket (collection) can grow its own volumes.
		"-master.volumeSizeLimitMB=1024", "-volume.max=64",
		"-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		// No 10 s wait between leaving the master and stopping: the
		// benchmark is done with it.
		"-volume.preStopSeconds=0",
		"-filer", "-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-filer.localSocket=" + filepath.Join(opts.Dir, "filer.sock"),
	}
	if opts.EncryptVolumeData {
		args = append(args, "-filer.encryptVolumeData")
	}
	if !opts.S3 {
		return args, nil
	}
	conf, err := s3Config(opts.AccessKey, opts.SecretKey)
	if err != nil {
		return nil, err
	}
	confFile := filepath.Join(opts.Dir, "s3.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		return nil, err
	}
	return append(args, "-s3", "-s3.port="+p(6), "-s3.port.grpc="+p(7),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.cert.file="+opts.CertFile, "-s3.key.file="+opts.KeyFile,
		"-s3.config="+confFile, "-s3.localSocket="+filepath.Join(opts.Dir, "s3.sock")), nil
}

// s3Config is the S3 gateway's configuration: one identity with every
// action, and SeaweedFS's local KMS provider, which makes a key for any key
// id on demand (a bucket's aws:kms default without a key id uses its
// default key).
func s3Config(accessKey, secretKey string) ([]byte, error) {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	return json.Marshal(map[string]any{
		"identities": []identity{{Name: "bench", Credentials: []cred{{accessKey, secretKey}},
			Actions: []string{"Admin", "Read", "Write", "List", "Tagging"}}},
		"kms": map[string]any{
			"default_provider": "local",
			"providers": map[string]any{
				"local": map[string]any{"type": "local", "enableOnDemandCreate": true},
			},
		},
	})
}

// ready polls until the filer answers over HTTP, the master lists a data
// node, and the S3 port (if any) accepts a connection.
func (s *Server) ready(ports []int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("weed server exited: %v", s.cmd.ProcessState)
		default:
		}
		last = s.probe(hc, ports)
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("weed server not ready within %v: %w", wait, last)
}

func (s *Server) probe(hc *http.Client, ports []int) error {
	res, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[4]))
	if err != nil {
		return fmt.Errorf("filer: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("filer: %s", res.Status)
	}
	res, err = hc.Get(fmt.Sprintf("http://127.0.0.1:%d/dir/status", ports[0]))
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	if n, err := dataNodes(body); err != nil || n == 0 {
		return fmt.Errorf("master: no volume server has joined (%v)", err)
	}
	if s.S3 != "" {
		c, err := net.DialTimeout("tcp", s.S3, time.Second)
		if err != nil {
			return fmt.Errorf("S3 gateway: %w", err)
		}
		c.Close()
	}
	return nil
}

// dataNodes counts the volume servers in the master's /dir/status answer.
func dataNodes(status []byte) (int, error) {
	var st struct {
		Topology struct {
			DataCenters []struct {
				Racks []struct {
					DataNodes []json.RawMessage
				}
			}
		}
	}
	if err := json.Unmarshal(status, &st); err != nil {
		return 0, err
	}
	n := 0
	for _, dc := range st.Topology.DataCenters {
		for _, r := range dc.Racks {
			n += len(r.DataNodes)
		}
	}
	return n, nil
}

// shell runs one `weed shell` command against the server and returns what
// it printed.
func (s *Server) shell(command string) (string, error) {
	cmd := exec.Command(s.bin, "-logdir="+s.logDir, "shell", "-master="+s.master, "-filer="+s.filer, "-connectTimeout=30s")
	cmd.Stdin = strings.NewReader(command + "\nexit\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return "", fmt.Errorf("weed shell %q: %w\n%s", command, err, out.String())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		return "", fmt.Errorf("weed shell %q: no answer within a minute\n%s", command, out.String())
	}
	// weed shell ends well even when a command fails; it says so.
	if strings.Contains(out.String(), "error") {
		return "", fmt.Errorf("weed shell %q:\n%s", command, out.String())
	}
	return out.String(), nil
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop ends the server (SIGTERM, then SIGKILL after 3 s: with the S3
// gateway it can take longer than that to stop by itself, and nothing of
// it is kept), waits for it, and removes its sockets in /tmp.
func (s *Server) Stop() {
	stopProcess(s.cmd, s.done)
	for _, p := range s.sockets {
		os.Remove(p)
	}
}

func stopProcess(cmd *exec.Cmd, done chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Mount is one running `weed mount`.
type Mount struct {
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Mount mounts the filer's root at dir (created if missing) and waits,
// up to 30 s, until the kernel lists the mount. Its chunk cache (cacheDir)
// is off, so that a read after the page cache is dropped is as cold as on
// the other file systems.
func (s *Server) Mount(dir, cacheDir string, log io.Writer) (*Mount, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, cacheDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	m := &Mount{Dir: dir, done: make(chan struct{})}
	m.cmd = exec.Command(s.bin, "-logdir="+s.logDir, "mount", "-filer="+s.filer, "-filer.path=/", "-dir="+dir,
		"-cacheDir="+cacheDir, "-cacheCapacityMB=0", "-localSocket="+filepath.Join(cacheDir, "mount.sock"))
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mounted, err := mountinfo.IsMountPoint(dir)
		if err != nil {
			m.Unmount()
			return nil, err
		}
		if mounted {
			return m, nil
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("weed mount exited: %v", m.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			m.Unmount()
			return nil, errors.New("weed mount: not mounted within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pid is the mount's process id.
func (m *Mount) Pid() int { return m.cmd.Process.Pid }

// Unmount unmounts (fusermount3 -u, lazily if busy) and stops the process.
func (m *Mount) Unmount() error {
	err := exec.Command("fusermount3", "-u", m.Dir).Run()
	if err != nil {
		err = exec.Command("fusermount3", "-u", "-z", m.Dir).Run()
	}
	stopProcess(m.cmd, m.done)
	return err
}
