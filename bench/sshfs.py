"""The peer: sshfs over loopback to a private sshd that this target starts itself.

Everything lives in one temp dir: host and client keys, sshd's config and log, the
exported directory and the mount point. Nothing system-wide is touched except that
sshd, as root, insists that its privilege-separation dir /run/sshd exists.
"""

import getpass
import os
import subprocess
from pathlib import Path

from bench import procs
from bench.targets import Target, TargetUnavailable

CIPHER = "aes128-gcm@openssh.com"
START_TIMEOUT = 20.0

_SSHD_CONFIG = """\
ListenAddress 127.0.0.1
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
UsePAM no
# The temp dir sits under a world-writable /tmp, which StrictModes rejects.
StrictModes no
Subsystem sftp internal-sftp
PidFile none
AllowTcpForwarding no
X11Forwarding no
PermitTTY no
LogLevel ERROR
"""


class SshfsTarget(Target):
    name = "sshfs"

    def __init__(self, workdir: Path, extra_options: list[str] | None = None) -> None:
        super().__init__(workdir)
        self._extra = extra_options or []

    def setup(self) -> Path:
        tools = {name: procs.executable(name) for name in ("sshd", "sshfs", "ssh-keygen", "ssh")}
        missing = [name for name, path in tools.items() if path is None]
        if missing:
            raise TargetUnavailable(f"{', '.join(missing)} not installed; run bench/setup.sh")
        if not Path("/dev/fuse").exists():
            raise TargetUnavailable("/dev/fuse is missing")
        self._sshd_bin, self._sshfs_bin = str(tools["sshd"]), str(tools["sshfs"])
        self._ssh_bin, keygen = str(tools["ssh"]), str(tools["ssh-keygen"])

        self._dir = self._tempdir()
        self._export = self._dir / "export"
        self._mountpoint = self._dir / "mnt"
        self._export.mkdir()
        self._mountpoint.mkdir()
        for key in ("host_key", "client_key"):
            subprocess.run(
                [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(self._dir / key)],
                check=True,
                timeout=30,
            )
        (self._dir / "authorized_keys").write_bytes((self._dir / "client_key.pub").read_bytes())
        config = self._dir / "sshd_config"
        config.write_text(_SSHD_CONFIG.format(dir=self._dir, user=getpass.getuser()))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

        self._port = procs.free_port()
        host_key = (self._dir / "host_key.pub").read_text().strip()
        (self._dir / "known_hosts").write_text(f"[127.0.0.1]:{self._port} {host_key}\n")
        self._start_sshd(config)
        self._options = self._mount_options()
        self._description = f"{self._versions()}; -o {','.join(self._shown_options())}"
        self._sshfs: subprocess.Popen[bytes] | None = None
        self._cleanup.callback(self._unmount)
        self._mount()
        return self._mountpoint

    def _start_sshd(self, config: Path) -> None:
        sshd_log = self._dir / "sshd.log"
        with sshd_log.open("wb") as log_out:
            sshd = subprocess.Popen(
                [self._sshd_bin, "-D", "-e", "-f", str(config), "-p", str(self._port)],
                stdin=subprocess.DEVNULL,
                stdout=log_out,
                stderr=log_out,
            )
        self._cleanup.callback(self._stop_sshd, sshd)
        procs.wait_until(lambda: procs.port_open(self._port), "sshd", START_TIMEOUT, sshd, sshd_log)

    @staticmethod
    def _stop_sshd(sshd: "subprocess.Popen[bytes]") -> None:
        # Let sshd reap its sessions first; killed earlier, it leaves them as zombies.
        try:
            procs.wait_until(lambda: not procs.children(sshd.pid), "sshd sessions", 5.0)
        except RuntimeError:
            pass
        finally:
            procs.stop(sshd)

    def _mount_options(self) -> list[str]:
        ciphers = subprocess.run(
            [self._ssh_bin, "-Q", "cipher"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split()
        options = [
            f"IdentityFile={self._dir / 'client_key'}",
            f"UserKnownHostsFile={self._dir / 'known_hosts'}",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            f"port={self._port}",
        ]
        # The performance options, the ones the report lists.
        if CIPHER in ciphers:
            options.append(f"Ciphers={CIPHER}")
        options.append("Compression=no")
        # No max_conns: sshfs opens the extra connections lazily, so each remount put
        # a ~0.3 s SSH handshake inside a timed read; single-threaded I/O gains nothing.

        # Keep the page cache across opens while the file is unchanged: the same
        # close-to-open promise netvol makes, so warm reads compare like with like.
        options.append("auto_cache")
        return options + self._extra

    def _versions(self) -> str:
        sshfs = subprocess.run(
            [self._sshfs_bin, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        ssh = subprocess.run(
            [self._ssh_bin, "-V"], capture_output=True, text=True, timeout=10, check=False
        )
        lines = (sshfs.stdout + sshfs.stderr).splitlines()
        sshfs_version = next((x.split()[-1] for x in lines if x.startswith("SSHFS version")), "?")
        return f"sshfs {sshfs_version}, {ssh.stderr.split(',')[0].strip()}"

    def _mount(self) -> None:
        sshfs_log = self._dir / "sshfs.log"
        source = f"{getpass.getuser()}@127.0.0.1:{self._export}"
        # -f keeps sshfs in the foreground, so we hold its PID and can stop it.
        with sshfs_log.open("ab") as log_out:
            self._sshfs = subprocess.Popen(
                [
                    self._sshfs_bin,
                    "-f",
                    source,
                    str(self._mountpoint),
                    "-o",
                    ",".join(self._options),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_out,
                stderr=log_out,
            )
        procs.wait_until(
            lambda: procs.is_mounted(self._mountpoint),
            "sshfs mount",
            START_TIMEOUT,
            self._sshfs,
            sshfs_log,
        )

    def _unmount(self) -> None:
        try:
            procs.unmount(self._mountpoint)
        finally:
            if self._sshfs is not None:
                procs.stop(self._sshfs)
                self._sshfs = None

    def drop_caches(self) -> None:
        self._unmount()
        self._mount()

    def _shown_options(self) -> list[str]:
        return [
            o
            for o in self._options
            if not o.startswith(("IdentityFile", "UserKnownHosts", "port="))
        ]

    def describe(self) -> str:
        return self._description
