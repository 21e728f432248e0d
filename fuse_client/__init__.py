"""The FUSE client: mounts a netvol volume as a local directory."""

import os

# mfusepy loads libfuse2 unless told otherwise; libfuse3 measured faster
# (~610 vs ~460 MB/s writes through a Python passthrough) and needs no big_writes.
os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
