"""The directory under test: every test here takes `fs_root`, an empty directory
on a netvol mount (tests/fuse_client/conftest.py), mode 0o777, owned by root.
The suite passes on a local ext4 directory too, which is how it was checked.

A user other than root does not need to reach `fs_root` through its ancestors:
see users.py.
"""

import os

import pytest


@pytest.fixture(autouse=True)
def _runs_as_root() -> None:
    assert os.geteuid() == 0, "the POSIX suite runs as root: it chowns, mknods and plays nobody"
