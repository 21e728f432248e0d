"""The server's bearer token: taken from settings, or kept in a file it creates once."""

import hmac
import logging
import os
import secrets
from pathlib import Path

from storage_server.config import ConfigError
from storage_server.settings import ServerSettings

log = logging.getLogger(__name__)


def load_or_create_token(settings: ServerSettings) -> str:
    """Return the token every call must carry; create and keep one on first start."""
    if settings.token:
        return settings.token
    path = settings.resolved_token_file
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = _create(path)
        log.info("generated a new access token; it is kept in %s", path)
        return token
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from exc
    if not token:
        raise ConfigError(f"token file {path} is empty")
    log.info("access token is kept in %s", path)
    return token


def _create(path: Path) -> str:
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two servers starting at once must not each write a different token.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison, so timing does not leak the token."""
    return hmac.compare_digest(presented.encode(), expected.encode())
