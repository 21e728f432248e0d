"""File data through Write and Read: bit-exact round trips, overwrites, holes,
truncation, huge offsets, and how reads are chunked."""

import errno
import random
import stat

from proto.netvol.v1 import filesystem_pb2 as pb
from tests.harness.server import StorageServer
from tests.harness.volume import Volume, errno_of, new_request_id, sha256

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MAX_FILE = 2**63 - 1

SIZES = [0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB]


def test_round_trip(any_store_server: StorageServer) -> None:
    vol = Volume(any_store_server)
    total = 0
    for size in SIZES:
        data = random.Random(size).randbytes(size)
        attr = vol.create(f"f{size}", data)
        assert (attr.size, attr.allocated) == (size, size), size
        assert attr.data_version == (1 if size else 0)
        assert sha256(vol.read(attr.ino)) == sha256(data), size
        total += size
    assert vol.used() == total


def test_read_chunks(vol: Volume) -> None:
    data = random.Random(1).randbytes(3 * MiB + 5)
    attr = vol.create("f", data)
    chunks = vol.read_chunks(attr.ino)
    assert [len(c.data) for c in chunks] == [MiB, MiB, MiB, 5]
    assert chunks[0].attr == attr
    assert not any(c.HasField("attr") for c in chunks[1:])
    middle = vol.read(attr.ino, offset=MiB - 3, length=2 * MiB + 1)
    assert middle == data[MiB - 3 : 3 * MiB - 2]
    # Reads are clipped to the size; past the end there is one chunk with the attributes.
    assert vol.read(attr.ino, offset=3 * MiB, length=100) == data[3 * MiB :]
    for offset, length in [(len(data), 10), (len(data) + 100, 10), (0, 0), (2**64 - 1, 2**64 - 1)]:
        empty = vol.read_chunks(attr.ino, offset=offset, length=length)
        assert len(empty) == 1
        assert empty[0].data == b""
        assert empty[0].attr == attr


def test_overwrite_in_the_middle_of_a_large_file(any_store_server: StorageServer) -> None:
    vol = Volume(any_store_server)
    rng = random.Random(7)
    model = bytearray(rng.randbytes(9 * MiB))
    attr = vol.create("f", bytes(model))
    for offset, length in [
        (3 * MiB + 123, 100 * KiB),
        (4 * MiB - 10, 20),
        (0, 1),
        (9 * MiB - 1, 1),
    ]:
        piece = rng.randbytes(length)
        model[offset : offset + length] = piece
        attr = vol.write(attr.ino, offset, piece)
    assert attr.size == attr.allocated == 9 * MiB
    assert attr.data_version == 5
    assert vol.used() == 9 * MiB
    assert sha256(vol.read(attr.ino)) == sha256(bytes(model))


def test_pieces_of_one_stream(vol: Volume) -> None:
    file = vol.mknod("f")
    # Out of order, overlapping and empty pieces: later pieces win.
    pieces = [(10, b"aaaaaaaaaa"), (0, b"bbbbb"), (15, b"cc"), (30, b""), (4, b"d")]
    attr = vol.write_pieces(file.ino, pieces)
    assert vol.read(file.ino) == b"bbbbd" + bytes(5) + b"aaaaaccaaa"
    assert (attr.size, attr.allocated, attr.data_version) == (20, 15, 1)
    unchanged = vol.write_pieces(file.ino, [])
    assert unchanged == attr


def test_several_pieces_to_a_message(any_store_server: StorageServer) -> None:
    """Scattered, overlapping pieces, many to a message or one: later ones win."""
    vol = Volume(any_store_server)
    file = vol.mknod("f")
    rng = random.Random(5)
    model, held = bytearray(256 * KiB), bytearray(256 * KiB)
    messages = [pb.WriteRequest(header=pb.WriteHeader(volume_id=vol.id, ino=file.ino))]
    for _ in range(20):
        pieces = []
        for _ in range(rng.randrange(1, 40)):
            offset, data = rng.randrange(0, 250 * KiB), rng.randbytes(rng.randrange(1, 6 * KiB))
            model[offset : offset + len(data)] = data
            held[offset : offset + len(data)] = b"\1" * len(data)
            pieces.append(pb.WriteData(offset=offset, data=data))
        if len(pieces) == 1:
            messages.append(pb.WriteRequest(data=pieces[0]))
        else:
            messages.append(pb.WriteRequest(pieces=pb.WritePieces(pieces=pieces)))
    attr = vol.fs.Write(iter(messages))
    size = len(held.rstrip(b"\0"))
    assert (attr.size, attr.allocated) == (size, sum(held))
    assert vol.read(file.ino) == bytes(model[:size])
    assert vol.used() == sum(held)


def test_a_batch_in_one_call_is_a_write(vol: Volume) -> None:
    file = vol.create("f", b"0123456789")
    pieces = pb.WritePieces(
        pieces=[pb.WriteData(offset=2, data=b"ab"), pb.WriteData(offset=12, data=b"cd")]
    )
    header = pb.WriteHeader(volume_id=vol.id, request_id=new_request_id(), ino=file.ino)
    request = pb.WriteBatchRequest(header=header, pieces=pieces)
    attr = vol.fs.WriteBatch(request)
    assert (attr.size, attr.data_version) == (14, file.data_version + 1)
    assert vol.read(file.ino) == b"01ab456789\0\0cd"
    assert vol.fs.WriteBatch(request) == attr  # a retry is answered, not applied again
    to_directory = pb.WriteHeader(volume_id=vol.id, ino=vol.root)
    batch = pb.WriteBatchRequest(header=to_directory, pieces=pieces)
    assert errno_of(lambda: vol.fs.WriteBatch(batch)) == errno.EISDIR


def test_sparse_file_and_truncate(any_store_server: StorageServer) -> None:
    vol = Volume(any_store_server)
    data = random.Random(3).randbytes(200 * KiB)
    file = vol.mknod("f")
    attr = vol.write(file.ino, MiB, data)
    assert (attr.size, attr.allocated) == (MiB + len(data), len(data))
    assert vol.read(file.ino) == bytes(MiB) + data
    assert vol.used() == len(data)

    shrunk = vol.setattr(file.ino, size=MiB + 1000)
    assert (shrunk.size, shrunk.allocated) == (MiB + 1000, 1000)
    assert shrunk.data_version == attr.data_version + 1
    assert shrunk.mtime_ns == shrunk.ctime_ns > attr.mtime_ns
    assert vol.used() == 1000
    # Growing again makes a hole: the cut-off bytes do not come back.
    grown = vol.setattr(file.ino, size=2 * MiB)
    assert (grown.size, grown.allocated) == (2 * MiB, 1000)
    assert vol.read(file.ino) == bytes(MiB) + data[:1000] + bytes(MiB - 1000)
    assert vol.used() == 1000
    empty = vol.setattr(file.ino, size=0)
    assert (empty.size, empty.allocated) == (0, 0)
    assert vol.read(file.ino) == b""
    assert vol.used() == 0


def test_offsets_beyond_4_gib(vol: Volume) -> None:
    file = vol.mknod("f")
    offset = 3 * GiB + 5 * MiB + 17
    data = random.Random(5).randbytes(100 * KiB)
    attr = vol.write(file.ino, offset, data)
    assert (attr.size, attr.allocated) == (offset + len(data), len(data))
    assert vol.read(file.ino, offset - 10, 20) == bytes(10) + data[:10]
    assert vol.read(file.ino, offset + 1000, 2 * MiB) == data[1000:]
    assert vol.read(file.ino, GiB, 1000) == bytes(1000)
    far = 5 * GiB
    attr = vol.write(file.ino, far, b"far")
    assert attr.size == far + 3
    assert vol.read(file.ino, far - 1) == b"\0far"
    assert vol.setattr(file.ino, size=4 * GiB + 1).allocated == len(data)
    assert vol.used() == len(data)


def test_largest_file(vol: Volume) -> None:
    file = vol.mknod("f")
    attr = vol.write(file.ino, MAX_FILE - 3, b"end")
    assert attr.size == MAX_FILE
    assert vol.read(file.ino, MAX_FILE - 4, 10) == b"\0end"
    assert errno_of(lambda: vol.write(file.ino, MAX_FILE - 2, b"abc")) == errno.EFBIG
    assert errno_of(lambda: vol.write(file.ino, 2**64 - 1, b"a")) == errno.EFBIG
    assert vol.getattr(file.ino) == attr
    assert vol.setattr(file.ino, size=0).size == 0


def test_data_of_other_kinds(vol: Volume) -> None:
    directory = vol.mkdir("d")
    fifo = vol.mknod("p", stat.S_IFIFO | 0o600)
    assert errno_of(lambda: vol.write(directory.ino, 0, b"x")) == errno.EISDIR
    assert errno_of(lambda: vol.read(directory.ino)) == errno.EISDIR
    assert errno_of(lambda: vol.write(fifo.ino, 0, b"x")) == errno.EINVAL
    assert errno_of(lambda: vol.write(2**40, 0, b"x")) == errno.ENOENT
    assert errno_of(lambda: vol.read(2**40)) == errno.ENOENT
