"""What the node plugin remembers: for each volume it staged, where, and the target
paths it bound it into with which flags. One JSON file per volume in the state
directory; a restarted plugin reads them to mount again what the CO believes
mounted. Nothing secret is written here.

The directory must outlive the plugin's process (in a container: a hostPath),
and must not be the directory of the CSI socket, which the spec reserves.
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Target:
    read_only: bool
    flags: tuple[str, ...]
    # The access mode (csi VolumeCapability.AccessMode) it was published with.
    mode: int


@dataclass
class Staged:
    volume_id: str
    # The storage server's name of the volume: what a mount opens.
    name: str
    staging_path: str
    read_only: bool
    targets: dict[str, Target] = field(default_factory=dict)

    def holds(self, path: str) -> bool:
        """Whether the volume is staged or published at `path`."""
        return path == self.staging_path or path in self.targets


class NodeState:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "volumes").mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / "logs").mkdir(exist_ok=True, mode=0o700)

    def _file(self, volume_id: str) -> Path:
        # Volume ids are the CO's strings: hashed into a safe file name.
        digest = hashlib.sha256(volume_id.encode()).hexdigest()
        return self.directory / "volumes" / f"{digest}.json"

    def log_file(self, staged: Staged) -> Path:
        return self.directory / "logs" / f"mount-{staged.name}.log"

    def load(self, volume_id: str) -> Staged | None:
        try:
            return _decode(self._file(volume_id).read_text())
        except FileNotFoundError:
            return None

    def save(self, staged: Staged) -> None:
        path = self._file(staged.volume_id)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(json.dumps(asdict(staged)))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    def forget(self, volume_id: str) -> None:
        self._file(volume_id).unlink(missing_ok=True)

    def all(self) -> list[Staged]:
        return [_decode(p.read_text()) for p in sorted((self.directory / "volumes").glob("*.json"))]


def _decode(text: str) -> Staged:
    raw = json.loads(text)
    targets = {
        path: Target(t["read_only"], tuple(t["flags"]), t["mode"])
        for path, t in raw.pop("targets").items()
    }
    return Staged(**raw, targets=targets)
