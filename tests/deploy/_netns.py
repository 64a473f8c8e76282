"""Private "hosts" on this machine for cluster-launcher tests: network namespaces joined by a veth
pair, each running its own sshd inside private PID and mount namespaces.

Everything a host runs (its sshd, the SSH sessions the launcher opens, the Ray processes they
start, their ``ray stop``) lives in that host's namespaces:

- network: its own interfaces and ports (``ip netns``): Ray's 6379/8265 and sshd's port 22 there
  are not the machine's;
- PID (``unshare --pid --mount-proc``): ``ray stop`` sees, and can kill, only that host's
  processes; killing the namespace's ``unshare`` ends them all;
- mount: a private ``/tmp`` (so ``/tmp/ray``, ``/tmp/ray/ray_current_cluster``, the launcher's
  cluster state and SSH control sockets are the host's own), a tmpfs on ``/run`` (``/run/sshd``),
  and a private home bound over ``/root`` (``~/ray_bootstrap_config.yaml``, ``~/.ray``,
  ``~/.bashrc``), with this Python, its virtual environment and the checkout kept visible where
  they live under ``/root``. ``/tmp`` and home are the ``tmp`` and ``home`` folders of a state
  directory, so that they outlive one command (the launcher keeps its cluster state in ``/tmp``)
  and the test can read the hosts' Ray logs.

The rest of the file system is shared, as NFS would be: the scratch directory must therefore live
outside ``/tmp`` (``/var/tmp``) to be visible inside. Nothing is created in the machine's own
network namespace, ``/tmp`` or home.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
TOOLS = ("ip", "unshare", "ssh", "ssh-keygen", "rsync")

ROOT_HOME = Path("/root")

# Runs inside the fresh mount namespace, before the host's command: private /tmp, /run and home.
# $0 is the state directory (its tmp/ and home/), $1 the ':'-separated paths under /root or /tmp
# to keep visible (bound into home/ or tmp/ first, then carried along by the recursive binds).
_PRIVATE_MOUNTS = (
    "set -e; home=$0/home; keep=$1; shift; "
    "IFS=:; for p in $keep; do case $p in "
    '/tmp/*) t="$0/tmp${p#/tmp}";; *) t="$home${p#/root}";; esac; '
    'mkdir -p "$t"; mount --bind "$p" "$t"; done; unset IFS; '
    'mount --rbind "$0/tmp" /tmp; mount -t tmpfs -o mode=755 tmpfs /run; mkdir -p /run/sshd; '
    'mount --rbind "$home" /root; exec "$@"'
)
HIDDEN = (ROOT_HOME, Path("/tmp"))
"""Folders the hosts get private copies of (home and /tmp)."""


def _paths_to_keep() -> list[str]:
    """What the hosts need from under /root or /tmp, which their private home and /tmp hide: this
    Python's installation (e.g. pyenv's), the virtual environment and the checkout (a CI clone may
    live in /tmp), where they live there."""
    repo = Path(__file__).resolve().parents[2]
    wanted = sorted({Path(p).resolve() for p in (sys.base_prefix, sys.prefix, repo)})
    hidden = [p for p in wanted if any(p.is_relative_to(h) and p != h for h in HIDDEN)]
    return [str(p) for p in hidden if not any(p != q and p.is_relative_to(q) for q in hidden)]


@dataclass
class Host:
    """One private host: a network namespace ``netns`` with address ``ip``, and the state directory
    of its sshd's namespaces (see :func:`make_state`)."""

    netns: str
    ip: str
    state: Path
    sshd: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return self.state / "home"


def make_state(directory: Path) -> Path:
    """A state directory for :func:`isolated_argv`: ``tmp/`` (mode 1777) and ``home/``."""
    (directory / "home").mkdir(parents=True, exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    (directory / "tmp").chmod(0o1777)
    return directory


def unavailable_reason() -> str | None:
    """Why private hosts cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "needs root (network, PID and mount namespaces, sshd on port 22)"
    if not SSHD.exists():
        return f"{SSHD} is missing (apt-get install openssh-server)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iproute2 util-linux openssh-client rsync)"
    name = f"plray-probe-{os.getpid()}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns add` fails here: {probe.stderr.strip()}"
    try:
        with tempfile.TemporaryDirectory(prefix="plray-probe-", dir="/var/tmp") as state:
            argv = isolated_argv(name, make_state(Path(state)), ["true"])
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            return f"private PID/mount namespaces fail here: {done.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def isolated_argv(netns: str, state: Path, argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` in ``netns`` with private PID and mount namespaces, and
    ``state``'s ``tmp`` and ``home`` as ``/tmp`` and root's home."""
    unshare = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--mount", "--propagation", "private"]
    keep = ":".join(_paths_to_keep())
    return ["ip", "netns", "exec", netns, *unshare, "sh", "-c", _PRIVATE_MOUNTS, str(state), keep, *argv]


def make_hosts(prefix: str, scratch: Path, subnet: str = "10.231.0") -> list[Host]:
    """Two network namespaces, a head and a worker, joined by a veth pair on ``subnet``.0/24.

    Each gets loopback, the address ``subnet.1`` or ``subnet.2`` and a default route over the veth,
    so that Ray's node-address detection (a UDP "connect" towards a public address) picks that
    address. The addresses exist only inside the two namespaces.
    """
    hosts = []
    for i in range(2):
        host = Host(f"{prefix}-{i}", f"{subnet}.{i + 1}", make_state(scratch / f"host-{i}"))
        _ip("netns", "add", host.netns)
        hosts.append(host)
        _ip("-n", host.netns, "link", "set", "lo", "up")
    head, worker = hosts
    _ip("-n", head.netns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", worker.netns)
    for host in hosts:
        _ip("-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "veth0")
        _ip("-n", host.netns, "link", "set", "veth0", "up")
        _ip("-n", host.netns, "route", "add", "default", "dev", "veth0")
    return hosts


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def make_ssh_key(directory: Path) -> Path:
    """A fresh passphrase-less ed25519 key pair in ``directory``; returns the private key's path."""
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "plray-test", "-f", str(key)], check=True)
    return key


def start_sshd(host: Host, scratch: Path, public_key: Path, login_env: dict[str, str]) -> None:
    """Start the host's own sshd on ``host.ip``:22 (root by key only) and wait until it accepts.

    ``login_env`` is exported by the host's ``~/.bashrc``, which the launcher's SSH sessions source;
    its values are expanded by the shell there (``"/opt/bin:$PATH"``).
    """
    conf_dir = scratch / f"sshd-{host.netns}"
    conf_dir.mkdir(parents=True, exist_ok=True)
    host_key = conf_dir / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    authorized = conf_dir / "authorized_keys"
    shutil.copyfile(public_key, authorized)
    conf = conf_dir / "sshd_config"
    conf.write_text(
        f"ListenAddress {host.ip}:22\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {conf_dir / 'sshd.pid'}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nMaxStartups 100\nMaxSessions 100\n"
        "Subsystem sftp internal-sftp\n"
    )
    exports = "".join(f'export {k}="{v}"\n' for k, v in login_env.items())
    (host.home / ".bashrc").write_text(exports)
    (host.home / ".profile").write_text(". ~/.bashrc\n")
    log = (scratch / f"sshd-{host.netns}.log").open("w")
    argv = isolated_argv(host.netns, host.state, [str(SSHD), "-D", "-e", "-f", str(conf)])
    host.sshd = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _wait_for_port(host, 22, timeout_s=30)


def _wait_for_port(host: Host, port: int, timeout_s: float) -> None:
    """Wait until something inside ``host`` accepts TCP connections on ``host.ip:port``."""
    probe = f"import socket; socket.create_connection(('{host.ip}', {port}), timeout=2).close()"
    argv = ["ip", "netns", "exec", host.netns, sys.executable, "-c", probe]
    deadline = time.monotonic() + timeout_s
    while subprocess.run(argv, capture_output=True).returncode != 0:
        if host.sshd is not None and host.sshd.poll() is not None:
            raise RuntimeError(f"sshd in {host.netns} exited with {host.sshd.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host.ip}:{port} in {host.netns}")
        time.sleep(0.2)


def run_in(
    host: Host, state: Path, argv: list[str], env: dict[str, str], timeout_s: float, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``argv`` to completion inside ``host``'s network namespace, in private PID and mount
    namespaces of its own with ``state``'s /tmp and home; stdout and stderr together, as text."""
    return subprocess.run(
        isolated_argv(host.netns, state, argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout_s,
        start_new_session=True,
    )


def destroy(hosts: list[Host]) -> None:
    """Kill each host's namespace (its sshd's ``unshare``, and with it every process inside), then
    delete the network namespaces."""
    for host in hosts:
        if host.sshd is not None and host.sshd.poll() is None:
            os.kill(host.sshd.pid, signal.SIGKILL)  # the unshare: --kill-child takes the namespace down
            host.sshd.wait(timeout=30)
    for host in hosts:
        _kill_leftovers(host.netns)
        subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)


def _kill_leftovers(netns: str, timeout_s: float = 10) -> None:
    """Wait for the processes left in ``netns`` (all started by this test) to go; kill them by PID
    if they outstay ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while pids := subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split():
        if time.monotonic() > deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            return
        time.sleep(0.2)
