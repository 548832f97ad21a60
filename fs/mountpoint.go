package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sealfs/sealfs/internal/mountinfo"
)

// PrepareMountpoint checks that dir can take a mount before anything is
// opened, and returns its absolute path. It creates dir if it does not
// exist, and removes a stale mount left there by a crashed daemon
// ("transport endpoint is not connected"). Every error says what to do.
func PrepareMountpoint(dir string, logger *slog.Logger) (string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "", fmt.Errorf("/dev/fuse is missing (%w): load the fuse module (modprobe fuse), "+
			"or run the container with --device /dev/fuse --cap-add SYS_ADMIN", err)
	}
	if os.Geteuid() != 0 {
		if _, err := fusermount(); err != nil {
			return "", fmt.Errorf("fusermount3 is not installed: install the fuse3 package (apt-get install fuse3)")
		}
	}
	dir = abs(dir)
	_, err := os.Stat(dir)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		logger.Warn("removing a stale mount left by a daemon that did not shut down", "mountpoint", dir)
		if derr := detach(dir); derr != nil {
			return "", fmt.Errorf("%s holds a stale mount (transport endpoint is not connected) that could not be removed (%v); "+
				"remove it with: fusermount3 -u -z %s", dir, derr, dir)
		}
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("%s: %w (after removing a stale mount; try: fusermount3 -u -z %s)", dir, err, dir)
		}
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("creating mount point: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("mount point: %w", err)
	}
	if mounted, err := mountinfo.IsMountPoint(dir); err != nil {
		return "", err
	} else if mounted {
		return "", fmt.Errorf("%s is already a mount point (another sealfs?): unmount it first (fusermount3 -u %s), or pick another directory", dir, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("mount point: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory: mount on an empty directory", dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return "", fmt.Errorf("mount point: %w", err)
	}
	names, err := d.Readdirnames(1)
	d.Close()
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("mount point: %w", err)
	}
	if len(names) > 0 {
		return "", fmt.Errorf("%s is not empty: mount on an empty directory (the mount would hide what is there)", dir)
	}
	return dir, nil
}

func fusermount() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("fusermount3 not found")
}

func runFusermount(args ...string) error {
	bin, err := fusermount()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
