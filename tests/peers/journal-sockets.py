#!/usr/bin/python3
"""journald's sockets, held as systemd holds them (for tests/lib/journal.sh).

Under systemd the sockets of journald belong to PID 1 (the units
systemd-journald.socket and systemd-journald-dev-log.socket) and reach
journald by socket activation (sd_listen_fds(3)), so they outlive a
journald restart: datagrams queued in the native socket while journald is
down wait there and are read by the next journald.  This helper plays
PID 1's part for the private journald of tests/lib/journal.sh.

  journal-sockets.py hold CTL
      Create the sockets as systemd 252's units do, then hold them and
      serve them over the AF_UNIX stream socket CTL (made last: once CTL
      exists, the sockets do) until SIGTERM, SIGINT or SIGHUP; then unlink
      their files (those still ours) and CTL and exit 0.  Closes the fds it
      inherited above 2.  Silent unless failing.
  journal-sockets.py exec CTL PROGRAM [ARGS...]
      Fetch the held sockets from CTL (SCM_RIGHTS), put them at fds 3.. and
      execute PROGRAM with LISTEN_FDS, LISTEN_PID (this process: the pid
      stays through exec) and LISTEN_FDNAMES, as systemd starts
      systemd-journald.service.  Other fds above 2 are closed.

The sockets, in the order passed (systemd-journald.service's Sockets=):
  /run/systemd/journal/socket   datagram (systemd-journald.socket)
  /run/systemd/journal/stdout   stream, listening (systemd-journald.socket)
  /run/systemd/journal/dev-log  datagram (systemd-journald-dev-log.socket)
Each: SocketMode=0666, PassCredentials=yes (SO_PASSCRED), PassSecurity=yes
(SO_PASSSEC), Timestamping=us (SO_TIMESTAMP), ReceiveBuffer=8M (SO_RCVBUF,
then SO_RCVBUFFORCE past net.core.rmem_max, as systemd's fd_set_rcvbuf()),
dev-log also SendBuffer=8M; the stream socket listens with systemd's
backlog (the kernel caps it at net.core.somaxconn).  Neither the /dev/log
symlink (Symlinks=) nor the audit socket: the test journald has neither.
How many datagrams the native socket queues is net.unix.max_dgram_qlen of
the network namespace when it is made (PID 1 raises it to 512 at boot; a
container may keep the kernel's 10): past that, senders block.
"""
import os
import signal
import socket
import sys

DIR = "/run/systemd/journal"
SOCKETS = [  # path, type, unit (LISTEN_FDNAMES: FileDescriptorName= default)
    (DIR + "/socket", socket.SOCK_DGRAM, "systemd-journald.socket"),
    (DIR + "/stdout", socket.SOCK_STREAM, "systemd-journald.socket"),
    (DIR + "/dev-log", socket.SOCK_DGRAM, "systemd-journald-dev-log.socket"),
]
BUF = 8 * 1024 * 1024
# <asm-generic/socket.h> (x86, arm, ...): what Python's socket module lacks.
SO_PASSCRED = getattr(socket, "SO_PASSCRED", 16)
SO_PASSSEC = getattr(socket, "SO_PASSSEC", 34)
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
BACKLOG = 2**31 - 1  # systemd's SOMAXCONN_DELUXE; the kernel caps it


def die(msg):
    sys.stderr.write("journal-sockets: %s\n" % msg)
    sys.exit(1)


def set_buf(s, opt, force, n):
    """systemd's fd_set_rcvbuf()/fd_set_sndbuf(): the plain option, then
    the FORCE one (root) if the kernel limit kept the size below n."""
    s.setsockopt(socket.SOL_SOCKET, opt, n)
    if s.getsockopt(socket.SOL_SOCKET, opt) < 2 * n:
        s.setsockopt(socket.SOL_SOCKET, force, n)


def make(path, kind):
    s = socket.socket(socket.AF_UNIX, kind)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    old = os.umask(0o111)  # SocketMode=0666, set at bind as systemd does
    try:
        s.bind(path)
    finally:
        os.umask(old)
    for opt in (SO_PASSCRED, SO_TIMESTAMP):
        s.setsockopt(socket.SOL_SOCKET, opt, 1)
    try:  # PassSecurity=yes: systemd only warns when it fails
        s.setsockopt(socket.SOL_SOCKET, SO_PASSSEC, 1)
    except OSError:
        pass
    set_buf(s, socket.SO_RCVBUF, SO_RCVBUFFORCE, BUF)
    if path.endswith("/dev-log"):
        set_buf(s, socket.SO_SNDBUF, SO_SNDBUFFORCE, BUF)
    if kind == socket.SOCK_STREAM:
        s.listen(BACKLOG)
    return s


def unlink_if(path, ino):
    """Remove path if it is still the file our bind() made (a journald
    started without us may have put its own there)."""
    try:
        if os.lstat(path).st_ino == ino:
            os.unlink(path)
    except OSError:
        pass


def hold(ctl):
    os.closerange(3, 4096)  # nothing of the shell's kept open for long
    socks = [make(path, kind) for path, kind, _ in SOCKETS]
    made = [(path, os.lstat(path).st_ino) for path, _, _ in SOCKETS]
    fds = [s.fileno() for s in socks]
    names = ":".join(unit for _, _, unit in SOCKETS).encode()

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = ctl + ".tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    srv.bind(tmp)
    srv.listen(16)
    os.rename(tmp, ctl)  # CTL appears listening, after the sockets
    made.append((ctl, os.lstat(ctl).st_ino))

    def stop(signum, frame):
        for path, ino in made:
            unlink_if(path, ino)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    while True:
        try:
            conn, _ = srv.accept()
        except InterruptedError:
            continue
        with conn:
            try:
                socket.send_fds(conn, [names], fds)
            except OSError:
                pass  # the launcher went away; nothing to do


def launch(ctl, argv):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(ctl)
        names, fds, _, _ = socket.recv_fds(c, 4096, len(SOCKETS))
    except OSError as e:
        die("%s: %s" % (ctl, e))
    c.close()
    if len(fds) != len(SOCKETS):
        die("%s: got %d sockets, not %d" % (ctl, len(fds), len(SOCKETS)))
    # Out of the way first, then to 3, 4, ... (inheritable), the rest closed.
    high = [os.dup2(fd, 100 + i, inheritable=False) for i, fd in enumerate(fds)]
    for fd in fds:
        if fd not in high:
            os.close(fd)
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    os.closerange(3 + len(high), 4096)
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    env["LISTEN_FDS"] = str(len(high))
    env["LISTEN_PID"] = str(os.getpid())
    env["LISTEN_FDNAMES"] = names.decode()
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        die("%s: %s" % (argv[0], e))


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "hold":
        hold(a[1])
    elif len(a) >= 3 and a[0] == "exec":
        launch(a[1], a[2:])
    else:
        die("usage: journal-sockets.py hold CTL | exec CTL PROGRAM [ARGS...]")


if __name__ == "__main__":
    main()
