"""Files kept by content: raw mails and attachments, in DATA_DIR/blobs under their SHA-256."""
import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def path_of(data_dir: Path, sha256: str) -> Path:
    if not _SHA256.match(sha256):
        raise ValueError("not a SHA-256")
    return data_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256


def store(data_dir: Path, data: bytes) -> str:
    """Keep the bytes (once per content) and return their SHA-256. Written to a temp file and
    renamed, so that a crash never leaves half a file under the name."""
    sha256 = hashlib.sha256(data).hexdigest()
    target = path_of(data_dir, sha256)
    if target.exists():
        return sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return sha256


def read(data_dir: Path, sha256: str) -> bytes:
    return path_of(data_dir, sha256).read_bytes()
