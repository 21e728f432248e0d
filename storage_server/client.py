"""Connecting to the storage server: address, token and TLS for every client
(volctl, the FUSE client, the CSI plugin)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from storage_server.config import ConfigError
from storage_server.settings import DEFAULT_LISTEN, ServerSettings

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    server: str = DEFAULT_LISTEN
    token: str = field(default="", repr=False)
    token_file: Path | None = None
    # PEM bundle to verify the server with; when set, the connection uses TLS.
    tls_ca: Path | None = None
    timeout: float = 30.0

    def resolved_token(self) -> str:
        """The token from settings, else its file, else a local server's default file."""
        if self.token:
            return self.token
        path = self.token_file or ServerSettings().resolved_token_file
        try:
            token = path.read_text().strip()
        except FileNotFoundError as exc:
            if self.token_file is None:
                raise ConfigError(
                    "no access token: set NETVOL_TOKEN, --token-file, or token in the config"
                ) from exc
            raise ConfigError(f"token file {path} does not exist") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from exc
        if not token:
            raise ConfigError(f"token file {path} is empty")
        return token


class _TokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the token to every call (plaintext channels refuse call credentials)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._header]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    # Client streams (Write) need the token as much as unary calls do.
    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._details(details), requests)


def connect(settings: ClientSettings) -> grpc.Channel:
    """A channel whose every call carries the token."""
    token = settings.resolved_token()
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # A server that is back is found within a second (gRPC's default backoff
        # grows to two minutes): a hard mount resumes as soon as it can.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    if settings.tls_ca:
        try:
            roots = settings.tls_ca.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read CA bundle {settings.tls_ca}: {exc.strerror}") from exc
        channel = grpc.secure_channel(settings.server, grpc.ssl_channel_credentials(roots), options)
    else:
        channel = grpc.insecure_channel(settings.server, options)
    return grpc.intercept_channel(channel, _TokenInterceptor(token))
