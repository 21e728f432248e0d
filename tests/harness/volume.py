"""A volume of a real storage server, driven through the Filesystem API."""

import hashlib
import stat
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from fuse_client.orphans import NAME
from proto.netvol.v1 import admin_pb2 as apb
from proto.netvol.v1 import filesystem_pb2 as pb
from tests.harness.server import StorageServer

ERRNO_KEY = "netvol-errno"
WRITE_PIECE = 1024 * 1024
READ_ALL = 2**62


def errno_of(call: Callable[[], Any]) -> int:
    """The errno a call fails with (it must fail with one)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    for item in info.value.trailing_metadata() or ():
        if item.key == ERRNO_KEY:
            return int(item.value)
    raise AssertionError(f"no errno in the failure: {info.value}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Volume:
    """One volume: thin wrappers that fill in the volume id and sensible defaults."""

    def __init__(
        self,
        server: StorageServer,
        name: str = "",
        size: int = 2**30,
        source: apb.ContentSource | None = None,
    ) -> None:
        """A new volume: empty, or a copy of `source` (a snapshot or a volume)."""
        self.server = server
        # Unique by default: tests share servers.
        self.name = name = name or f"vol-{uuid.uuid4().hex[:12]}"
        server.admin().CreateVolume(
            apb.CreateVolumeRequest(name=name, size_bytes=size, content_source=source)
        )
        self.fs = server.filesystem()
        opened = self.fs.OpenVolume(pb.OpenVolumeRequest(name=name))
        self.id = opened.volume_id
        self.root = opened.root_ino

    def mknod(
        self,
        name: str,
        mode: int = stat.S_IFREG | 0o644,
        parent: int | None = None,
        request_id: str = "",
        **fields: Any,
    ) -> pb.Attr:
        return self.make_node(name, mode, parent, request_id, **fields).attr

    def make_node(
        self,
        name: str,
        mode: int = stat.S_IFREG | 0o644,
        parent: int | None = None,
        request_id: str = "",
        **fields: Any,
    ) -> pb.EntryReply:
        return self.fs.MakeNode(
            pb.MakeNodeRequest(
                volume_id=self.id,
                request_id=request_id,
                parent=self.root if parent is None else parent,
                name=name,
                mode=mode,
                **fields,
            )
        )

    def mkdir(self, name: str, parent: int | None = None) -> pb.Attr:
        return self.mknod(name, stat.S_IFDIR | 0o755, parent)

    def lookup(self, name: str, parent: int | None = None) -> pb.Attr:
        parent = self.root if parent is None else parent
        return self.fs.Lookup(pb.LookupRequest(volume_id=self.id, parent=parent, name=name))

    def getattr(self, ino: int) -> pb.Attr:
        return self.fs.GetAttr(pb.GetAttrRequest(volume_id=self.id, ino=ino))

    def setattr(self, ino: int, request_id: str = "", **fields: Any) -> pb.Attr:
        return self.fs.SetAttr(
            pb.SetAttrRequest(volume_id=self.id, request_id=request_id, ino=ino, **fields)
        )

    def unlink(
        self, name: str, parent: int | None = None, directory: bool = False, request_id: str = ""
    ) -> pb.UnlinkResponse:
        return self.fs.Unlink(
            pb.UnlinkRequest(
                volume_id=self.id,
                request_id=request_id,
                parent=self.root if parent is None else parent,
                name=name,
                directory=directory,
            )
        )

    def unlink_many(
        self, *names: str | tuple[int, str], request_id: str = ""
    ) -> list[pb.UnlinkOutcome]:
        """Unlink names (of the root, or as (directory, name)) in one call; an
        outcome per name."""
        pairs = [(self.root, name) if isinstance(name, str) else name for name in names]
        request = pb.UnlinkManyRequest(
            volume_id=self.id,
            request_id=request_id,
            names=[pb.UnlinkName(parent=parent, name=name) for parent, name in pairs],
        )
        return list(self.fs.UnlinkMany(request).outcomes)

    def link(self, ino: int, name: str, parent: int | None = None) -> pb.Attr:
        parent = self.root if parent is None else parent
        return self.fs.Link(
            pb.LinkRequest(volume_id=self.id, ino=ino, new_parent=parent, new_name=name)
        ).attr

    def rename(
        self,
        name: str,
        new_name: str,
        parent: int | None = None,
        new_parent: int | None = None,
        flags: int = 0,
        request_id: str = "",
    ) -> int:
        reply = self.fs.Rename(
            pb.RenameRequest(
                volume_id=self.id,
                request_id=request_id,
                parent=self.root if parent is None else parent,
                name=name,
                new_parent=self.root if new_parent is None else new_parent,
                new_name=new_name,
                flags=flags,
            )
        )
        return int(reply.replaced_ino)

    def write_pieces(
        self, ino: int, pieces: list[tuple[int, bytes]], request_id: str = ""
    ) -> pb.Attr:
        def stream() -> Iterator[pb.WriteRequest]:
            header = pb.WriteHeader(volume_id=self.id, request_id=request_id, ino=ino)
            yield pb.WriteRequest(header=header)
            for offset, data in pieces:
                yield pb.WriteRequest(data=pb.WriteData(offset=offset, data=data))

        return self.fs.Write(stream())

    def write(self, ino: int, offset: int, data: bytes, request_id: str = "") -> pb.Attr:
        """One stream of WRITE_PIECE pieces, as the FUSE client sends them."""
        pieces = [(offset + i, data[i : i + WRITE_PIECE]) for i in range(0, len(data), WRITE_PIECE)]
        return self.write_pieces(ino, pieces, request_id)

    def read_chunks(self, ino: int, offset: int = 0, length: int = READ_ALL) -> list[pb.ReadChunk]:
        request = pb.ReadRequest(volume_id=self.id, ino=ino, offset=offset, length=length)
        return list(self.fs.Read(request))

    def read(self, ino: int, offset: int = 0, length: int = READ_ALL) -> bytes:
        return b"".join(c.data for c in self.read_chunks(ino, offset, length))

    def readdir(
        self, ino: int | None = None, after: str = "", limit: int = 0
    ) -> pb.ReadDirResponse:
        ino = self.root if ino is None else ino
        return self.fs.ReadDir(
            pb.ReadDirRequest(volume_id=self.id, ino=ino, after=after, limit=limit)
        )

    def names(self, ino: int | None = None) -> list[str]:
        return [e.name for e in self.readdir(ino).entries]

    def statfs(self) -> pb.StatFsResponse:
        return self.fs.StatFs(pb.StatFsRequest(volume_id=self.id))

    def used(self) -> int:
        return int(self.statfs().used_bytes)

    def create(self, name: str, data: bytes = b"", parent: int | None = None) -> pb.Attr:
        """A regular file holding `data`."""
        attr = self.mknod(name, parent=parent)
        return self.write(attr.ino, 0, data) if data else attr


def new_request_id() -> str:
    return uuid.uuid4().hex


def orphan_names(server: StorageServer, volume: str) -> list[str]:
    """The names in the volume's orphans directory (files unlinked while open),
    as the server has them; [] while there is no such directory."""
    fs = server.filesystem()
    opened = fs.OpenVolume(pb.OpenVolumeRequest(name=volume))
    request = pb.LookupRequest(volume_id=opened.volume_id, parent=opened.root_ino, name=NAME)
    try:
        hidden = fs.Lookup(request)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return []
    listing = fs.ReadDir(pb.ReadDirRequest(volume_id=opened.volume_id, ino=hidden.ino))
    return sorted(entry.name for entry in listing.entries)
