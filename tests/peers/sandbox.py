"""sandbox: run a command under the seccomp filters of dcevents' systemd unit.

  /usr/bin/python3 sandbox.py [--filter-dump FILE] -- COMMAND ARGS...

There is no systemd PID 1 on a test machine, so this builds what systemd 252
(Debian 12) loads for these settings of systemd/hardening.conf, each as its
own stacked filter as systemd does, with the syscall filter last:
  RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
      socket() with any other family fails with EAFNOSUPPORT (socketpair()
      is not filtered: systemd does not filter it either)
  MemoryDenyWriteExecute=yes
      mmap() with PROT_WRITE|PROT_EXEC, mprotect() and pkey_mprotect() with
      PROT_EXEC, shmat() with SHM_EXEC fail with EPERM
  RestrictNamespaces=yes
      unshare()/clone() with a namespace flag and setns() fail with EPERM;
      clone3() fails with ENOSYS, so that glibc falls back to clone()
  SystemCallFilter=@system-service, then ~@privileged @resources, with
  SystemCallErrorNumber=EPERM
      allowed: @default and @system-service less @privileged and @resources,
      expanded from this machine's `systemd-analyze syscall-filter`; names
      libseccomp does not know here are skipped (as systemd does); every
      other system call fails with EPERM
  SystemCallArchitectures=native
      every filter holds the native architecture only; a system call of
      another one (i386 int 0x80, x32) kills the calling thread
  NoNewPrivileges=yes
      libseccomp sets no_new_privs when it loads the first filter
Then COMMAND is executed (PATH is searched).  --filter-dump FILE writes the
allowed system calls, one a line, sorted.  Exit status 2 on a usage or
setup error, 127 if COMMAND cannot be executed.
"""
import errno
import os
import subprocess
import sys

import seccomp
from seccomp import ALLOW, ERRNO, EQ, GT, KILL, LT, MASKED_EQ, Arg

FAMILIES = (1, 2, 10)                 # AF_UNIX, AF_INET, AF_INET6
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
              0x20000000, 0x40000000)  # CLONE_NEWNS, CGROUP, UTS, IPC, USER,
                                       # PID, NET: systemd 252's list


def die(msg):
    """Report a usage or setup error and exit with status 2."""
    sys.stderr.write("sandbox.py: %s\n" % msg)
    sys.exit(2)


def groups():
    """Parse `systemd-analyze syscall-filter` into {"@group": [members]}."""
    try:
        out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die("systemd-analyze syscall-filter: %s" % e)
    sets, cur = {}, None
    for line in out.splitlines():
        word = line.strip()
        if not word or word.startswith("#"):
            continue                  # blank, a description, the "ungrouped"
        if not line[0].isspace():
            cur = sets.setdefault(word, [])    # "@name" starts a group
        elif cur is not None:
            cur.append(word)          # a system call or an included "@group"
    return sets


def expand(sets, name, seen=None):
    """The system calls of a group, with included groups expanded recursively."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    if name not in sets:
        die("systemd-analyze knows no group %s" % name)
    out = set()
    for m in sets[name]:
        out |= expand(sets, m, seen) if m.startswith("@") else {m}
    return out


def allowed_names():
    """SystemCallFilter=@system-service then ~@privileged @resources, with
    the @default that systemd adds to every allow list."""
    sets = groups()
    allow = expand(sets, "@default") | expand(sets, "@system-service")
    return allow - expand(sets, "@privileged") - expand(sets, "@resources")


def new_filter(default):
    """A libseccomp filter for the native architecture only; a foreign
    architecture's call kills the thread (libseccomp's default, which
    systemd's SystemCallArchitectures= filter keeps)."""
    f = seccomp.SyscallFilter(default)
    f.set_attr(seccomp.Attr.ACT_BADARCH, KILL)
    return f


def address_families():
    """RestrictAddressFamilies as systemd 252 builds an allow list: refuse
    below the lowest, above the highest and every gap in between."""
    f, no = new_filter(ALLOW), ERRNO(errno.EAFNOSUPPORT)
    f.add_rule_exactly(no, "socket", Arg(0, LT, min(FAMILIES)))
    f.add_rule_exactly(no, "socket", Arg(0, GT, max(FAMILIES)))
    for af in range(min(FAMILIES) + 1, max(FAMILIES)):
        if af not in FAMILIES:
            f.add_rule_exactly(no, "socket", Arg(0, EQ, af))
    return f


def memory_deny_write_execute():
    """MemoryDenyWriteExecute=yes, with systemd's masked comparisons on arg2."""
    f, no = new_filter(ALLOW), ERRNO(errno.EPERM)
    wx = PROT_WRITE | PROT_EXEC
    f.add_rule_exactly(no, "mmap", Arg(2, MASKED_EQ, wx, wx))
    f.add_rule_exactly(no, "mprotect", Arg(2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
    f.add_rule_exactly(no, "pkey_mprotect",
                       Arg(2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
    f.add_rule_exactly(no, "shmat", Arg(2, MASKED_EQ, SHM_EXEC, SHM_EXEC))
    return f


def restrict_namespaces():
    """RestrictNamespaces=yes: no namespace flag, no setns(), no clone3()."""
    f, no = new_filter(ALLOW), ERRNO(errno.EPERM)
    f.add_rule_exactly(ERRNO(errno.ENOSYS), "clone3")
    f.add_rule_exactly(no, "setns")
    for flag in NAMESPACES:
        f.add_rule_exactly(no, "unshare", Arg(0, MASKED_EQ, flag, flag))
        f.add_rule_exactly(no, "clone", Arg(0, MASKED_EQ, flag, flag))
    return f


def syscall_filter(names):
    """The allow list with default ERRNO(EPERM); returns it and the names it
    holds (those that libseccomp resolves to a system call of this arch)."""
    f, held = new_filter(ERRNO(errno.EPERM)), []
    for name in sorted(names):
        nr = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
        if nr < 0:
            continue                  # unknown here, or another arch's only
        f.add_rule_exactly(ALLOW, nr)
        held.append(name)
    return f, held


def main(argv):
    """Parse the arguments, load the filters, execute the command."""
    dump = None
    if argv[:1] == ["--filter-dump"] and len(argv) > 1:
        dump, argv = argv[1], argv[2:]
    if argv[:1] != ["--"] or len(argv) < 2:
        die("usage: sandbox.py [--filter-dump FILE] -- COMMAND ARGS...")
    main_filter, held = syscall_filter(allowed_names())
    if dump:
        with open(dump, "w") as out:
            out.write("".join(n + "\n" for n in held))
    # systemd's order: the allow list last, so that loading the others
    # (seccomp(), prctl()) is still allowed; the first load sets NNP.
    for f in (address_families(), memory_deny_write_execute(),
              restrict_namespaces(), main_filter):
        f.load()
    try:
        os.execvp(argv[1], argv[1:])
    except OSError as e:
        sys.stderr.write("sandbox.py: %s: %s\n" % (argv[1], e.strerror))
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
