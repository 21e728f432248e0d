"""The Filesystem gRPC service: translates messages to calls of the filesystem
modules and back. Each call is one transaction; every mutation runs through
requests.run_once, so a retried request is applied once. What hands out a name
for data waits for stable storage: MakeNode (an inode number), Write and a
SetAttr of the size (a data version); so does Sync. Other mutations commit
relaxed (see storage_server.db). A number lost in a power cut would be handed out
again: a mount's buffered writes for the lost file would land in the new one,
and its cached blocks of a lost version would pass for the new data. A
directory's (mtime, ctime), which mounts compare to keep listings, is stamped
by relaxed calls: only a power cut and a clock stepping back together could
repeat a lost stamp (and the mtime would have to match too)."""

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from storage_server.db import Database
from storage_server.errors import FsError, InvalidArgument
from storage_server.filesystem import (
    collector,
    data,
    files,
    inodes,
    namespace,
    rename,
    requests,
    xattrs,
)
from storage_server.filesystem.blobs import BlobStore
from storage_server.filesystem.files import AttrChanges
from storage_server.filesystem.inodes import Node
from storage_server.settings import ServerSettings
from storage_server.volumes import VolumeKey, VolumeStore

M = TypeVar("M", bound=Message)

UNLINK_MANY_MAX = 1000


def attr_message(node: Node) -> pb.Attr:
    return pb.Attr(
        ino=node.ino,
        mode=node.mode,
        nlink=node.nlink,
        uid=node.uid,
        gid=node.gid,
        rdev=node.rdev,
        size=node.size,
        allocated=node.allocated,
        atime_ns=node.atime_ns,
        mtime_ns=node.mtime_ns,
        ctime_ns=node.ctime_ns,
        data_version=node.data_version,
    )


def _times(stamp: tuple[int, int]) -> pb.DirectoryTimes:
    return pb.DirectoryTimes(mtime_ns=stamp[0], ctime_ns=stamp[1])


def _entry_reply(added: namespace.Added) -> pb.EntryReply:
    return pb.EntryReply(
        attr=attr_message(added.node),
        parent=attr_message(added.directory),
        parent_before=_times(added.before),
    )


def _unlink_reply(unlinked: namespace.Unlinked) -> pb.UnlinkResponse:
    return pb.UnlinkResponse(
        ino=unlinked.ino, nlink=unlinked.nlink, parent=attr_message(unlinked.directory)
    )


def _optional(message: Message, field: str) -> int | None:
    value: int = getattr(message, field)
    return value if message.HasField(field) else None


class FilesystemService(filesystem_pb2_grpc.FilesystemServicer):
    def __init__(
        self, db: Database, volumes: VolumeStore, blobs: BlobStore, settings: ServerSettings
    ) -> None:
        self._db = db
        self._volumes = volumes
        self._blobs = blobs
        self._settings = settings

    def _once(
        self,
        volume_id: str,
        request_id: str,
        reply: type[M],
        work: Callable[[Session], M],
        *,
        durable: bool = False,
    ) -> M:
        return requests.run_once(self._db, volume_id, request_id, reply, work, durable=durable)

    def OpenVolume(
        self, request: pb.OpenVolumeRequest, context: grpc.ServicerContext
    ) -> pb.OpenVolumeResponse:
        volume = self._volumes.get(VolumeKey(name=request.name))
        return pb.OpenVolumeResponse(
            volume_id=volume.id,
            root_ino=volume.root_ino,
            size_bytes=volume.size_bytes,
            durable_names=True,
        )

    def Lookup(self, request: pb.LookupRequest, context: grpc.ServicerContext) -> pb.Attr:
        with self._db.read() as session:
            node = namespace.lookup(session, request.volume_id, request.parent, request.name)
            return attr_message(node)

    def GetAttr(self, request: pb.GetAttrRequest, context: grpc.ServicerContext) -> pb.Attr:
        with self._db.read() as session:
            return attr_message(inodes.get(session, request.volume_id, request.ino))

    def SetAttr(self, request: pb.SetAttrRequest, context: grpc.ServicerContext) -> pb.Attr:
        changes = AttrChanges(
            mode=_optional(request, "mode"),
            uid=_optional(request, "uid"),
            gid=_optional(request, "gid"),
            size=_optional(request, "size"),
            atime_ns=_optional(request, "atime_ns"),
            mtime_ns=_optional(request, "mtime_ns"),
            atime_now=request.atime_now,
            mtime_now=request.mtime_now,
        )
        return self._once(
            request.volume_id,
            request.request_id,
            pb.Attr,
            lambda s: attr_message(files.set_attr(s, request.volume_id, request.ino, changes)),
            durable=changes.size is not None,
        )

    def ReadDir(
        self, request: pb.ReadDirRequest, context: grpc.ServicerContext
    ) -> pb.ReadDirResponse:
        with self._db.read() as session:
            directory, rows, more = namespace.read_dir(
                session, request.volume_id, request.ino, request.after, request.limit
            )
        # Entries as dicts, which protobuf takes for message fields: for
        # thousands of entries about three times faster than building each
        # nested message from keyword arguments (the stubs only know the latter).
        fields, name = namespace.ATTR_FIELDS, len(namespace.ATTR_FIELDS)
        entries = [
            {"name": row[name], "attr": dict(zip(fields, row, strict=False))} for row in rows
        ]
        return pb.ReadDirResponse(
            entries=entries,  # type: ignore[arg-type]
            more=more,
            directory=attr_message(directory),
        )

    def MakeNode(self, request: pb.MakeNodeRequest, context: grpc.ServicerContext) -> pb.EntryReply:
        def work(session: Session) -> pb.EntryReply:
            added = namespace.make_node(
                session,
                request.volume_id,
                request.parent,
                request.name,
                mode=request.mode,
                uid=request.uid,
                gid=request.gid,
                rdev=request.rdev,
                target=request.target,
            )
            return _entry_reply(added)

        return self._once(request.volume_id, request.request_id, pb.EntryReply, work, durable=True)

    def Link(self, request: pb.LinkRequest, context: grpc.ServicerContext) -> pb.EntryReply:
        def work(session: Session) -> pb.EntryReply:
            added = namespace.link(
                session, request.volume_id, request.ino, request.new_parent, request.new_name
            )
            return _entry_reply(added)

        return self._once(request.volume_id, request.request_id, pb.EntryReply, work)

    def Unlink(self, request: pb.UnlinkRequest, context: grpc.ServicerContext) -> pb.UnlinkResponse:
        return self._once(
            request.volume_id,
            request.request_id,
            pb.UnlinkResponse,
            lambda s: _unlink_reply(
                namespace.unlink(
                    s, request.volume_id, request.parent, request.name, directory=request.directory
                )
            ),
        )

    def UnlinkMany(
        self, request: pb.UnlinkManyRequest, context: grpc.ServicerContext
    ) -> pb.UnlinkManyResponse:
        if len(request.names) > UNLINK_MANY_MAX:
            raise InvalidArgument(f"UnlinkMany takes at most {UNLINK_MANY_MAX} names")

        def work(session: Session) -> pb.UnlinkManyResponse:
            names = [(item.parent, item.name) for item in request.names]
            outcomes = [
                pb.UnlinkOutcome(errno=outcome.errno)
                if isinstance(outcome, FsError)
                else pb.UnlinkOutcome(reply=_unlink_reply(outcome))
                for outcome in namespace.unlink_files(session, request.volume_id, names)
            ]
            return pb.UnlinkManyResponse(outcomes=outcomes)

        return self._once(request.volume_id, request.request_id, pb.UnlinkManyResponse, work)

    def Rename(self, request: pb.RenameRequest, context: grpc.ServicerContext) -> pb.RenameResponse:
        def work(session: Session) -> pb.RenameResponse:
            renamed = rename.rename(
                session,
                request.volume_id,
                parent=request.parent,
                name=request.name,
                new_parent=request.new_parent,
                new_name=request.new_name,
                flags=request.flags,
            )
            return pb.RenameResponse(
                replaced_ino=renamed.replaced,
                parent=attr_message(renamed.old_dir),
                new_parent=attr_message(renamed.new_dir),
                parent_before=_times(renamed.old_before),
                new_parent_before=_times(renamed.new_before),
                moved=None if renamed.moved is None else attr_message(renamed.moved),
            )

        return self._once(request.volume_id, request.request_id, pb.RenameResponse, work)

    def ReadLink(
        self, request: pb.ReadLinkRequest, context: grpc.ServicerContext
    ) -> pb.ReadLinkResponse:
        with self._db.read() as session:
            target = namespace.read_link(session, request.volume_id, request.ino)
        return pb.ReadLinkResponse(target=target)

    def Read(
        self, request: pb.ReadRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReadChunk]:
        with self._db.read() as session:
            attr = attr_message(files.readable(session, request.volume_id, request.ino))
        end = min(request.offset + request.length, attr.size)
        chunks = data.read_range(self._db, self._blobs, request.ino, request.offset, end)
        # The first chunk carries the attributes, even when there is nothing to read.
        yield pb.ReadChunk(data=next(chunks, b""), attr=attr)
        for chunk in chunks:
            yield pb.ReadChunk(data=chunk)

    def Write(
        self, request_iterator: Iterator[pb.WriteRequest], context: grpc.ServicerContext
    ) -> pb.Attr:
        first = next(request_iterator, None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument("a Write stream starts with its header")

        def pieces() -> Iterator[pb.WriteData]:
            for part in request_iterator:
                kind = part.WhichOneof("part")
                if kind == "data":
                    yield part.data
                elif kind == "pieces":
                    yield from part.pieces.pieces
                else:
                    raise InvalidArgument("a Write stream has one header")

        return self._store(first.header, pieces())

    def WriteBatch(self, request: pb.WriteBatchRequest, context: grpc.ServicerContext) -> pb.Attr:
        return self._store(request.header, request.pieces.pieces)

    def _store(self, header: pb.WriteHeader, pieces: Iterable[pb.WriteData]) -> pb.Attr:
        """Blobs first, then one durable transaction that points the file at them."""
        writer = data.StreamWriter(
            self._blobs,
            self._settings.inline_max,
            self._settings.blob_grace_seconds,
            lambda: collector.generation(self._db),
        )
        for piece in pieces:
            writer.add(piece.offset, piece.data)
        extents = writer.finish()

        def work(session: Session) -> pb.Attr:
            writer.check_blobs(session)
            return attr_message(files.write(session, header.volume_id, header.ino, extents))

        return self._once(header.volume_id, header.request_id, pb.Attr, work, durable=True)

    def StatFs(self, request: pb.StatFsRequest, context: grpc.ServicerContext) -> pb.StatFsResponse:
        with self._db.read() as session:
            volume, count = namespace.stat_fs(session, request.volume_id)
            return pb.StatFsResponse(
                size_bytes=volume.size_bytes, used_bytes=volume.used_bytes, inodes=count
            )

    def GetXattr(
        self, request: pb.GetXattrRequest, context: grpc.ServicerContext
    ) -> pb.GetXattrResponse:
        with self._db.read() as session:
            value = xattrs.get(session, request.volume_id, request.ino, request.name)
        return pb.GetXattrResponse(value=value)

    def ListXattr(
        self, request: pb.ListXattrRequest, context: grpc.ServicerContext
    ) -> pb.ListXattrResponse:
        with self._db.read() as session:
            names = xattrs.names(session, request.volume_id, request.ino)
        return pb.ListXattrResponse(names=names)

    def SetXattr(
        self, request: pb.SetXattrRequest, context: grpc.ServicerContext
    ) -> pb.SetXattrResponse:
        def work(session: Session) -> pb.SetXattrResponse:
            xattrs.put(
                session,
                request.volume_id,
                request.ino,
                request.name,
                request.value,
                flags=request.flags,
            )
            return pb.SetXattrResponse()

        return self._once(request.volume_id, request.request_id, pb.SetXattrResponse, work)

    def RemoveXattr(
        self, request: pb.RemoveXattrRequest, context: grpc.ServicerContext
    ) -> pb.RemoveXattrResponse:
        def work(session: Session) -> pb.RemoveXattrResponse:
            xattrs.remove(session, request.volume_id, request.ino, request.name)
            return pb.RemoveXattrResponse()

        return self._once(request.volume_id, request.request_id, pb.RemoveXattrResponse, work)

    def Sync(self, request: pb.SyncRequest, context: grpc.ServicerContext) -> pb.SyncResponse:
        if not request.request_id:
            raise InvalidArgument("Sync needs a request id")

        def work(session: Session) -> pb.SyncResponse:
            # The request's record is the row this durable commit writes.
            inodes.require_volume(session, request.volume_id)
            return pb.SyncResponse()

        return self._once(
            request.volume_id, request.request_id, pb.SyncResponse, work, durable=True
        )
