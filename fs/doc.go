// Package fs is sealfs's FUSE mount: the object store seen as a file
// system, built on go-fuse's node API (imported as gofs). It owns the
// mapping from buckets, keys and object metadata to directories, files,
// POSIX attributes and extended attributes, the staging of writes until
// they are committed, and what the kernel is allowed to cache.
//
// It reaches data only through package cryptostore (it imports neither
// meta nor kms; the records it handles are the store's view of them,
// cryptostore.Object and cryptostore.ObjectMeta): it never opens a blob,
// a data key or the metadata database, never decides whether something is
// encrypted (the bucket does, at commit), and never writes plaintext to
// disk: writes waiting for their commit are in memory or in a
// cryptostore.Spool, sealed under a throwaway key.
//
// # Structure
//
// The tree has three node types, all in this package:
//
//   - rootNode, the mount's top: one directory per bucket. mkdir creates a
//     bucket (a name S3 refuses is EINVAL), rmdir deletes an empty one
//     (ENOTEMPTY otherwise); its mtime and ctime show when a bucket was
//     last created or deleted, through the mount or over S3 (in memory:
//     the mount's start after a restart). Nothing else can be created at the top, and
//     buckets cannot be renamed (EPERM).
//   - dirNode, a bucket's directory (key prefix "") or a directory inside
//     one: a key prefix ending in "/". mkdir writes a marker object, the
//     prefix itself ("a/b/"), which holds the directory's mode, owner and
//     mtime; a prefix that some key runs through is a directory even
//     without a marker (objects written over S3 make those). When a
//     directory would vanish because the mount removed its last key, a
//     marker is written so it stays.
//   - fileNode, an object: a regular file, or a symlink when its stored
//     mode has S_IFLNK (the object's content is the target, as other S3
//     file systems do it).
//
// Open directories are dirHandles, which read the store's listing a page
// (listPage keys) at a time and answer READDIRPLUS's lookups from the
// records they listed. A listing is in key order, files being created
// merged in by name, and its offsets are cookies that name an entry, not
// positions (cookies.go), so that a seek goes on after the same entry
// whatever changed before it. Open files are fileHandles. api_check.go
// lists every FUSE operation each type implements.
//
// Names: an object "x" and a directory "x/" can both exist in S3; the mount
// shows the directory (the object is reachable over S3 only). Keys with an
// empty segment ("a//b"), a segment "." or "..", or a segment longer than
// 255 bytes have no name on the mount and are not listed. A name longer
// than 255 bytes (NAME_MAX, which statfs reports) is ENAMETOOLONG for every
// call, as on a local file system; the kernel does not check it for FUSE.
//
// # Writing
//
// Writes go to the file node's staging area (stage.go), shared by all of
// the file's handles, and are committed through the store's one write path
// when a handle is flushed (close(2)), fsynced, or released last — and
// never before: until then nothing of them is visible over S3 or queued for
// replication. When close returns, the new version is committed and listed
// by S3; it is durable once fsync returns (see Durability).
//
// What a close commits is built on the version the file's handles opened:
// the version pinned for the inode (see Kernel caching), plus the writes.
// It is never read again by key, so an S3 PUT that lands while the file is
// open does not become the base of the mount's writes. The close is the
// later write and wins (last writer wins, as between two S3 PUTs): the
// object then holds the opened version with the writes, and the S3 PUT's
// version is replaced.
//
// A file written from its end onwards (the common case: created,
// truncated or appended to) streams into a cryptostore.Stage running
// alongside the writer, so its bytes are hashed, encrypted and written
// once, and the close commits the staged data with one call
// (Staged.Commit); a small one is put in a single call at close. The
// kernel sends its writeback in order but go-fuse serves requests on
// parallel goroutines, so a write that arrives before the ones it follows
// waits for them a moment (with the node's lock released), and a window
// absorbs small holes and the rewrites of a last, partial page. Anything
// else (a write behind what was streamed, a hole larger than the window, a
// read of streamed data) moves the file into a Spool overlay of 64 KiB
// chunks over the version it started from; if bytes had already been
// streamed, the stream's body is ended and its Staged data — written,
// sealed, readable, committed nowhere and kept from the orphan collector —
// becomes the overlay's base, and is discarded once the close has
// committed the overlay. The wait for a write's turn is the only timer: it
// decides which of the two ways the content is kept, never what anyone
// else sees. Memory stays O(window) per file being written, whatever its
// size, and the windows of all the files being written stay within 64 MiB
// together: a file smaller than the window's push size (1 MiB) is held
// whole in its window until the close, so a window that would take the
// mount past that moves its file into the overlay instead.
//
// Why a staged base and not the spool from the start: streaming keeps the
// common case to one pass over the bytes; the switch costs nothing more,
// because the close commits a composed version (cryptostore.Compose) that
// takes the staged data over.
//
// The close stores only what changed (cryptostore.Compose, FORMAT.md
// section 12): the chunks written since the version the file was opened
// at go into one new blob, the rest of the new version reads from that
// version's blobs, and regions never written (a truncate up, a write past
// the end, the holes of a sparse copy) are holes, stored nowhere and read
// as zeros. A 4 KiB patch into a 1 GiB file writes one 64 KiB chunk;
// `truncate -s 4G` writes the record only. A file is at most MaxFileSize
// (5 TiB, the largest object S3 stores): a truncate, write or fallocate
// that would make it longer fails with EFBIG before anything is staged.
//
// # Durability
//
// As on a local file system, close makes a version visible and fsync makes
// it durable. The mount's commits (on close, chmod, rename, mkdir, ...) are
// made with cryptostore.WithoutSync: visible to S3 and every reader at once,
// but the metadata reaches the disk with the next sync; fsync of a file or
// a directory, and unmounting, call Store.Sync, which makes every commit so
// far durable before returning. Data blobs are synced before any record
// points at them, so a crash loses a version not yet synced whole, never
// half. (S3 writes are always synced before they are acknowledged.)
//
// A full data disk (ENOSPC) loses no acknowledged byte and shows no byte
// that was never written. With the kernel's writeback cache, write(2) only
// fills the page cache: the kernel sends the pages back later, and marks
// them clean whatever the answer, so a write the mount failed to stage
// would leave the page cache holding bytes the file does not. So a write
// never fails for a full disk: the overlay's chunks that the spool cannot
// take are kept in memory (at most 256 MiB for the mount), and a stream
// whose Stage fails moves into the overlay from its copy of what it sent.
// Those copies (up to 8 MiB a file) are held within 64 MiB for the whole
// mount: a stream whose copy would pass that moves into the overlay before
// it sends more, as a failed one does, and its file is written through the
// spool. The full disk shows at the commit instead: a flush, fsync or close
// fails with ENOSPC and leaves the staging whole — every handle of the file
// still reads its writes, and the next flush, fsync or close commits them
// all once space returns. If the last close cannot commit them either, they
// are dropped: the file keeps the version last committed (by a close, fsync
// or truncate that succeeded), never that version with some of the writes.
// The kernel's pages and size of that inode then hold a content no version
// has, so nothing opens them again: a read opens the committed version past
// the page cache (FOPEN_DIRECT_IO), an open for writing answers ESTALE,
// which the kernel takes as a cue to look the name up again (LOOKUP_REVAL)
// and retry once, and that lookup makes a new inode. A truncate(2) is
// committed at once (unless writes are staged, which it joins): one that
// fails changes nothing, one that succeeds stays, even when a descriptor is
// open (its release, which the kernel sends after close returns, commits
// nothing of it). So after an ENOSPC a file holds the old content or the
// new one; internal/fsx checks exactly that on a nearly full disk
// (integration TestMountFsxDiskFull in make test, longer in make stress).
//
// What stays breakable: a write the mount cannot stage even so (past the
// memory bound, a stream of more than 8 MiB whose Stage or commit fails,
// a spool that fails other than for space) breaks the file's staging
// (stagingFailed in file.go), because it may have lost bytes it held:
// every later commit of it fails, the last close drops it, the file keeps
// the version last committed, and the inode is marked stale so that no
// new open joins it (ESTALE, and the kernel's retry gets a new inode). A
// second descriptor opened meanwhile then reads the committed version,
// not the first one's writes.
//
// One
// exception, as on a local file system: msync(2) and sync_file_range(2)
// of a range write back only that range, so the commit they cause holds
// the writes of that range and not those still cached elsewhere.
//
// A file created through the mount exists only in the mount until its
// first commit: lookups and listings of its directory include it (if that
// commit fails for good, it vanishes at the last close). Truncating a file
// nobody has open commits at once. A file deleted while open stays readable
// through its handles and is never committed (one deleted while its writes
// were streaming answers ESTALE: the streamed bytes went with it), and an
// O_TMPFILE file lives in a spool only.
//
// Metadata: mode, owner and mtime are stored as the user metadata "mode",
// "uid", "gid" and "mtime" (x-amz-meta-mode, ...), decimal, as other S3
// file systems store them; objects without them show 0644 (0755 for
// directories), the mount's owner and their last-modified time. atime is
// stored as "atime" when set (utimensat, touch -a; reads do not change it)
// and is mtime otherwise; every SETATTR that changes something stores
// "ctime", and ctime shows the latest of it, mtime and the object's last
// modification. A directory's mtime and ctime also show the last time an
// entry was created, removed or renamed in it through the mount (kept in
// memory while the kernel holds the directory's inode: storing it would
// cost a commit of the marker per file created); setting its mtime
// replaces it. A change while writes are staged is committed with them,
// otherwise by cryptostore.UpdateMeta. Set-id bits are cleared by a write (the mount
// asks the kernel for handle_killpriv_v2). Hard links are refused (EPERM:
// an object has one key), as are device nodes (EPERM) and FIFOs and
// sockets (EOPNOTSUPP).
//
// A write that cannot commit is refused when the file is opened for writing
// or created: while the bucket encrypts and its master key is disabled, open
// and create answer ENOKEY (FS.writable), because a close's error is one
// most programs ignore (a shell's redirect does). A key disabled while a
// file is open still fails that file's close.
//
// # Extended attributes
//
// Two namespaces (xattr.go), so that an object's system metadata stays
// readable with getfattr and the tools that copy attributes (rsync -X,
// cp -a, tar --xattrs, mv) see only what is the user's:
//
//   - user.NAME belongs to the user: any name, any value (binary too), set
//     and removed with setfattr, listed by listxattr, and stored as the S3
//     user metadata NAME, so S3 HEAD shows it as x-amz-meta-NAME (and
//     metadata set over S3 is a user.* attribute). What an HTTP header
//     cannot carry travels encoded: name bytes other than lower-case token
//     characters as %xx (user.DOSATTRIB is "%44%4f..."); values that are
//     not UTF-8 text (binary, control characters, empty) as an RFC 2047
//     word, =?UTF-8?B?base64?=, the form S3 itself uses (UTF-8 text is
//     stored as it is, as the S3 door stores it). The metadata that holds the POSIX attributes (mode, uid,
//     gid, mtime, atime, ctime) is not among them: chmod, chown and touch
//     change those, with the kernel's checks (a user.mode attribute is
//     stored as "%6dode"). S3 limits user metadata to 2 KiB per object, so
//     more is E2BIG. A symlink lists none (the kernel refuses user.* on
//     symlinks; one listed breaks every copying tool), and a bucket's
//     directory has none (EOPNOTSUPP): a bucket has no metadata to hold it.
//   - sealfs.H is the object's metadata header H as S3 HEAD returns it:
//     sealfs.x-amz-server-side-encryption ("aws:kms" on an encrypted
//     object), sealfs.x-amz-server-side-encryption-aws-kms-key-id,
//     sealfs.etag, sealfs.content-type, sealfs.x-amz-replication-status,
//     sealfs.x-amz-meta-mode, ...; sealfs.headers is all of them, one
//     "name: value" line each. They are answered by getxattr (getfattr -n
//     NAME, also on symlinks and directories) but never listed, and are
//     read-only (EPERM). A bucket's directory answers
//     sealfs.default-encryption ("aws:kms" while on): setting it turns
//     encryption on, removing it turns it off (its old name,
//     user.sealfs.default-encryption, is still answered and set, unlisted).
//
// Why not list the headers: every tool that copies attributes copies what
// listxattr names. Listed under user.*, rsync -X tries to remove them from
// each file it writes into the mount (EPERM, exit 23), cp -a plants them on
// local files, and a copy into the mount fails to set those of another
// bucket; listed in a namespace of their own, rsync run as root and tar
// --xattrs-include='*' try to set them on local files, which refuse it.
// File systems that expose computed attributes keep them out of listxattr
// for this reason (CephFS's ceph.* attributes: "The convention with kernel
// filesystems is to not report vxattrs when listxattr is called"), and S3
// file systems that store the user's attributes keep them in user
// metadata; sealfs does both. The cost: getfattr -d does not show the
// headers; getfattr -n sealfs.headers (or one name) does.
//
// security.*, system.*, trusted.* and any other namespace are not held:
// getting, setting and removing them answer EOPNOTSUPP, without a look at
// the store, as a local file system mounted without ACLs or labels does.
// "Not supported" rather than "no such attribute" matters for speed: ls -l
// asks every file for its SELinux label and POSIX ACL, and remembers a
// "not supported" for the whole file system, where ENODATA made it ask
// again, two round trips per file, most of the time of a warm ls -lR.
// getfacl then shows the ACL the mode bits make; the kernel still asks for
// security.capability before a file's first write and on chown (a round
// trip each), and takes "not supported" as "no capabilities".
//
// # Inode numbers
//
// A node's inode number is a 63-bit hash of its kind, bucket and key
// (inode.go), so a file keeps its number while mounted even after the
// kernel forgot it and looked it up again. The table of live numbers moves
// a colliding identity to the next free number, and files a renamed node's
// number under its new key, so a new file at the old name gets another.
// A node made for a key whose older node is still alive (stale, but held
// open or not yet forgotten by the kernel) gets a generation above every
// live one's: go-fuse takes two nodes of one number and generation for
// one, and would hand the stale inode back to the lookup meant to replace
// it (an open retried after ESTALE would then fail again).
//
// # Kernel caching
//
// The mount turns on the kernel's writeback cache (small writes are
// gathered into MaxWrite requests), asks for MaxWrite (1 MiB) requests,
// raises the mount's readahead to 1 MiB and its share of the kernel's dirty
// pages to 256 MiB (a FUSE mount gets 1% of the dirty threshold, and a
// large write stalled in the kernel's throttling every few MiB), and gives
// entries, attributes and failed lookups non-zero timeouts
// (DefaultTimeout).
//
// Directories' listings are not kept by the kernel between opens (no
// FOPEN_CACHE_DIR; see listingFlags in dir.go): each opendir lists from the
// store, the page a handle reads answering that handle alone. For a change
// made elsewhere the invalidator drops the kernel's entry and attributes of
// the deepest directory it knows on the key's path.
//
// A failed lookup asks the store, except in a fresh directory: one Mkdir
// made here, which found nothing under its prefix. Until something changes
// outside the mount (FS.outside), such a directory holds only the names
// created through its node, which Create, Mkdir, Symlink, Mknod and a
// rename into it record before they change the store; any other name is
// absent without a store call (an unpacked archive looks up every name
// before creating it). See dirNode.fresh.
//
// One version per open. A file opened through the mount reads exactly one
// version from open to close, whatever S3, replication or an admin command
// do to the object meanwhile. (Writes through the mount itself are seen by
// all of the file's open handles as they are made, as on a local file
// system.) The difficulty is the kernel's page cache: it belongs to the
// inode, all of the inode's handles share it, and a READ that fills it runs
// with whichever handle faulted; with the writeback cache the kernel also
// keeps its own idea of the file's size and never takes a new one from us.
// So each file node has one version, kver: the one its lookup returned (the
// kernel's size is that version's) or the last one the mount committed
// through it. The rules:
//
//   - Opening a file whose current version is kver (the common case: an
//     unchanged object read again) uses the page cache and keeps it
//     (FOPEN_KEEP_CACHE). Such handles read kver through one Handle pinned
//     for the node (fileNode.vh, released with the last handle), which
//     holds the version's record and blobs however often the key is
//     overwritten.
//   - Opening it when the current version is another one (S3 overwrote it
//     since the kernel looked the name up, or the same inode is opened
//     again, as through /proc/self/fd) pins that version for the handle
//     alone and opens it FOPEN_DIRECT_IO: its reads bypass the page cache,
//     so it neither reads kver's pages nor puts its own bytes there, and
//     its reads end where its version ends, not at the kernel's size. The
//     node is marked stale, so the next lookup makes a new inode for the
//     new version, whose page cache is again used.
//   - Opening it for writing when the current version differs joins kver
//     if the open handles pin it (the writes and the close build on the
//     version the page cache holds); if nothing pins it any more the open
//     fails with ESTALE, which the kernel takes as a cue to look the name
//     up again (LOOKUP_REVAL) and retry once, on a new inode.
//   - Writes through the mount go through the page cache, so a commit of a
//     staging built on kver (or on nothing: a new or truncated file) leaves
//     the cache valid: the committed version becomes kver and the handles
//     read it. A commit of one built on another version (truncate(2) of a
//     file nobody has open, after an outside change) leaves the inode
//     without a version: its pages are invalidated and the next lookup
//     makes a new inode. A failed commit does the same (the pages hold
//     bytes no version has).
//
// So the pages of an inode only ever hold kver, and every handle that uses
// them reads kver: two versions never meet in one page cache. One hole
// remains that the kernel leaves no way to close: mmap(2) of a
// FOPEN_DIRECT_IO handle (a MAP_PRIVATE map, or exec) reads through the
// inode's page cache anyway, with that handle; should a handle of kver be
// reading the same inode's pages at that moment, it could see the other
// version. An S3 GET reads one version too (cryptostore.Open pins it).
//
// What the mount changes, the kernel knows. Every other change (over S3, by
// replication, by an admin command) reaches FS.Changed from the store's
// OnChange; the mount then invalidates the directory entry (positive or
// negative), the attributes and the pages of what changed, so the change
// shows at once. With the writeback cache the kernel trusts the size and
// mtime it holds for a file over anything the file system answers, so a
// file changed outside is also marked stale: the next lookup makes a new
// node (the next inode generation), which the kernel sees as a new inode;
// descriptors opened before keep reading the version they opened (above).
// Changes the mount made itself are recognised (own* registries in fs.go)
// and not sent back.
//
// # Acting as a user
//
// With Options.As (sealfs mount --as USER) every operation is held to the
// user's policy as the same request over S3 would be, and every store call
// carries the user, so that the store checks kms:Decrypt and
// kms:GenerateDataKey on the bucket's key: what the policy refuses is
// EACCES. authz.go says which action each operation is; lookups and
// attributes are not checked. Without it the mount is the admin's.
//
// # Error handling
//
// Node methods return syscall.Errno. Store errors are mapped in one place,
// toErrno in errno.go, with errors.Is against the store's sentinels: not
// found is ENOENT, a disabled KMS key ENOKEY, a blob or record that fails
// verification EIO (and one log line naming the bucket and key), a
// policy's refusal EACCES — also a
// listed object whose blob file is missing, which is damage, not absence:
// stat and ls still show it, its reads fail with EIO, never ENOENT — an
// interrupted call EINTR, a non-empty bucket ENOTEMPTY, an invalid name
// EINVAL, a rename across buckets EXDEV (so mv copies), a disk error its own
// errno; anything else is EIO, logged once per message. go-fuse's own
// conversion must not be used: it compares with == and turns wrapped errors
// into ENOSYS.
//
// # Interrupts
//
// When the calling process gets a signal the kernel interrupts the request
// and go-fuse cancels its context. sealfs answers every request to the end
// instead (keep in node.go): its lookups are short, a commit abandoned half
// way would lose a close's data, and an EINTR from open(2), stat(2) or
// rename(2), which no local file system returns, breaks programs; Go
// programs, whose runtime preempts goroutines with SIGURG, would see it all
// the time. toErrno still maps a context error to EINTR.
//
// # Deadlocks
//
// The kernel holds locks on inodes while it waits for a request's answer.
// A notification (invalidating an entry or pages) takes those locks too, so
// notifications are never sent from inside a request: they run on the
// invalidator's goroutine (notify.go), which nothing waits on except, for a
// bounded moment, the store's change callback. The mount is served by a
// process that never touches its own mount point (tests run it as a child
// process); a process that served and used its own mount could deadlock in
// fork/exec or on page faults, as go-fuse's manual explains.
//
// Lock order: a file node's data lock (fileNode.mu) may be held while
// calling the store and while taking FS.mu, node.locMu or the inode
// table's lock, never the other way round; two file nodes are locked in
// creation order (lockFiles). A write waiting for its turn in a stream
// (stage.go) waits with the node's lock released.
//
// # Lifecycle
//
// Mount mounts and serves; PrepareMountpoint checks the directory first
// (and removes a stale mount left by a crash); Close commits every open
// file's staged writes and unmounts, lazily if files are still open.
package fs
