# syntax=docker/dockerfile:1
# One image for the storage server, the CSI controller and the CSI node plugin.
# The manifests in k8s/ pick the role with `command`; run as is, it is a server:
#   docker run -p 7450:7450 -v netvol-data:/var/lib/netvol netvol:0.1.0

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: install netvol and its dependencies into a virtual environment.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/netvol
WORKDIR /src
COPY pyproject.toml README.md ./
COPY csi ./csi
COPY fuse_client ./fuse_client
COPY proto ./proto
COPY storage_server ./storage_server
COPY volctl ./volctl
RUN /opt/netvol/bin/pip install .

# Runtime stage: the environment, FUSE for the node plugin, and a system user.
FROM ${PYTHON_IMAGE}
# fuse3 brings fusermount3 and libfuse3, which the node plugin's mounts use.
# Versions come from the base image's Debian release, which the tag pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fuse3 libfuse3-3 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 netvol \
    && useradd --system --uid 10001 --gid netvol --no-create-home \
        --home-dir /var/lib/netvol --shell /usr/sbin/nologin netvol \
    && install -d -o netvol -g netvol -m 0750 /var/lib/netvol
COPY --from=build /opt/netvol /opt/netvol
ENV PATH=/opt/netvol/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The server and the controller run as this user; the node plugin's pod runs
# as root, since mounting needs it (k8s/node.yaml).
USER 10001:10001
WORKDIR /var/lib/netvol
EXPOSE 7450
ENTRYPOINT ["netvol-server"]
CMD ["--listen=0.0.0.0:7450", "--data-dir=/var/lib/netvol"]
