"""Unpack uploaded archives safely.

A zip from a user is hostile until proven otherwise. Every limit is checked on the central
directory (declared sizes, counts, ratios, names, file types) before a byte is extracted, and
enforced again on the bytes actually inflated, since a crafted archive can lie in its
headers. Members are written under generated names inside ``dest`` (never the name in the
archive), created exclusively with ``mkstemp``, so no path in the archive can reach outside
``dest`` or follow a planted link; the name a person knows the file by travels separately in
``IncomingFile.name``. A member that breaks a rule is rejected by name and the rest of the
archive is still imported.

The limits on counts and sizes hold for the whole upload, not each archive: every zip of one
upload draws on one ``UploadBudget``, so two zips each under the limits cannot add up to
more than one may hold. An archive that would overdraw the budget is rejected whole. The
compression ratio is held for every member, whatever its size: many small members of
1000:1 add up as surely as one large one.

Members are inflated lazily, one per step of the iterator, so a caller that imports each
file before asking for the next and removes it then never has more than one expanded member
on disk. Nested archives are refused rather than expanded: the limits would have to
compound, and no imaging device writes them. The caller owns ``dest`` and removes it when
the import is done.
"""

from __future__ import annotations

import os
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile

DEFAULT_MAX_MEMBERS = 10_000
DEFAULT_MAX_TOTAL_BYTES = 4 * 1024**3
DEFAULT_MAX_MEMBER_BYTES = 512 * 1024**2
# Deflate tops out near 1030:1 and DICOM rarely compresses past 20:1. An image of mostly air
# or padding can go further, but every member is held to the ratio: exempting small ones
# lets an upload of many small members expand a thousandfold.
MAX_RATIO = 200
_CHUNK = 1024**2
# A central directory entry is 46 bytes plus its name and extra fields; allow long paths.
MAX_DIRECTORY_BYTES_PER_MEMBER = 46 + 1024

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
ARCHIVE_SUFFIXES = (
    ".zip",
    ".tar",
    ".tgz",
    ".gz",
    ".bz2",
    ".xz",
    ".7z",
    ".rar",
    ".zst",
    ".jar",
)
# Archive magic numbers: zip, gzip, bzip2, xz, 7z, rar, zstd, and "ustar" at offset 257.
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x28\xb5\x2f\xfd",
)
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_ALLOWED_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


@dataclass
class UploadBudget:
    """What the archives of one upload may still expand to, all of them together."""

    max_members: int
    max_bytes: int
    members: int = 0
    expanded_bytes: int = 0

    @classmethod
    def from_settings(cls) -> UploadBudget:
        return cls(
            max_members=_limit("RADREVIEW_MAX_ARCHIVE_MEMBERS", DEFAULT_MAX_MEMBERS),
            max_bytes=_limit("RADREVIEW_MAX_ARCHIVE_BYTES", DEFAULT_MAX_TOTAL_BYTES),
        )

    def refusal(self, *, members: int, expanded_bytes: int) -> str:
        """Why an archive of this size cannot be taken now, or "" if it can."""
        earlier = " with the archives before it in this upload" if self.members else ""
        if self.members + members > self.max_members:
            if not earlier:
                return f"archive has {members:,} members; the limit is {self.max_members:,}"
            return (
                f"archive has {members:,} members, {self.members + members:,}{earlier};"
                f" the limit is {self.max_members:,} (split it into smaller uploads)"
            )
        if self.expanded_bytes + expanded_bytes > self.max_bytes:
            total = self.expanded_bytes + expanded_bytes
            return (
                f"archive expands to {total:,} bytes{earlier}; the limit is"
                f" {self.max_bytes:,} (split it into smaller uploads)"
            )
        return ""

    def charge(self, *, members: int, expanded_bytes: int) -> None:
        self.members += members
        self.expanded_bytes += expanded_bytes


class _MemberRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _shown(text: str) -> str:
    """A member name as it may appear in a message: no control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _is_zip(incoming: IncomingFile, head: bytes) -> bool:
    return incoming.name.lower().endswith(".zip") or head.startswith(ZIP_MAGIC)


def _is_junk(parts: tuple[str, ...]) -> bool:
    return "__MACOSX" in parts or parts[-1] in _JUNK_NAMES or parts[-1].startswith("._")


def _unsafe_path(name: str) -> bool:
    if "\x00" in name or name.startswith(("/", "\\")):
        return True
    if len(name) >= 2 and name[1] == ":":  # a Windows drive letter
        return True
    return any(part == ".." for part in name.replace("\\", "/").split("/"))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix mode bits live in the high 16 bits of the external attributes (create_system 3).
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _check_member(info: zipfile.ZipInfo, *, max_member: int) -> None:
    name = info.filename
    if _unsafe_path(name):
        raise _MemberRejected("unsafe path (absolute or containing '..'): not extracted")
    if _is_symlink(info):
        raise _MemberRejected("symbolic link: not extracted")
    if name.lower().endswith(ARCHIVE_SUFFIXES):
        raise _MemberRejected("nested archive: unpack it and upload its files instead")
    if info.flag_bits & 0x1:
        raise _MemberRejected("encrypted member: not supported")
    if info.compress_type not in _ALLOWED_COMPRESSION:
        raise _MemberRejected(f"unsupported compression method {info.compress_type}")
    if info.file_size > max_member:
        raise _MemberRejected(f"{info.file_size:,} bytes uncompressed; the limit is {max_member:,}")
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > MAX_RATIO:
        raise _MemberRejected(
            f"compression ratio {ratio:,.0f}:1 exceeds {MAX_RATIO}:1 (a zip bomb?)"
        )


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, index: int) -> Path:
    """Inflate one member into a new file in ``dest``, enforcing its declared size on the
    real bytes; on any failure (a disk filling up included) the partial file is removed."""
    handle, name = tempfile.mkstemp(dir=dest, prefix=f"member-{index:06d}-", suffix=".dcm")
    target = Path(name)
    written = 0
    complete = False
    try:
        with archive.open(info) as source, os.fdopen(handle, "wb") as sink:
            while True:
                chunk = source.read(_CHUNK)
                if not chunk:
                    break
                if written == 0 and (
                    chunk.startswith(_ARCHIVE_MAGIC) or chunk[257:262] == b"ustar"
                ):
                    raise _MemberRejected("nested archive: unpack it and upload its files instead")
                written += len(chunk)
                if written > info.file_size:
                    raise _MemberRejected("inflates past its declared size: corrupt or hostile")
                sink.write(chunk)
        if written != info.file_size:
            raise _MemberRejected("shorter than its declared size: corrupt archive")
        complete = True
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _MemberRejected(f"corrupt member ({type(exc).__name__})") from exc
    finally:
        if not complete:
            target.unlink(missing_ok=True)
    return target


def _directory_claims(path: Path) -> tuple[int, int] | None:
    """(member count, central directory size) from the end records, zip64 first, as zipfile
    itself reads them; None if there is no end record (zipfile will say it is not a zip).

    ``zipfile`` builds an object per central directory entry when it opens an archive, so a
    1 GB upload of empty entries would need gigabytes of memory before any count check.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail_size = min(size, 22 + 65535 + 20)
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        count, directory_size = struct.unpack_from("<HI", tail, at + 10)
        locator = at - 20
        if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            offset = struct.unpack_from("<Q", tail, locator + 8)[0]
            if offset + 56 <= size:
                handle.seek(offset)
                record = handle.read(56)
                if record[:4] == b"PK\x06\x06":
                    count, directory_size = struct.unpack_from("<QQ", record, 32)
        return int(count), int(directory_size)


def _expand_zip(
    incoming: IncomingFile,
    dest: Path,
    budget: UploadBudget,
    on_open: Callable[[int], None] | None,
) -> Iterator[IncomingFile | FileOutcome]:
    max_member = _limit("RADREVIEW_MAX_FILE_BYTES", DEFAULT_MAX_MEMBER_BYTES)
    claims = _directory_claims(incoming.path)
    if claims is not None:
        count, directory_size = claims
        reason = budget.refusal(members=count, expanded_bytes=0)
        if not reason and directory_size > budget.max_members * MAX_DIRECTORY_BYTES_PER_MEMBER:
            reason = (
                f"archive directory is {directory_size:,} bytes, too large for the limit of"
                f" {budget.max_members:,} members"
            )
        if reason:
            yield FileOutcome(name=incoming.name, status="rejected", reason=reason)
            return
    try:
        archive = zipfile.ZipFile(incoming.path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        yield FileOutcome(
            name=incoming.name,
            status="rejected",
            reason=f"not a readable zip archive ({type(exc).__name__})",
        )
        return
    with archive:
        infos = archive.infolist()
        # Declared sizes bound the real ones: _extract refuses a member that inflates past
        # its declared size. So charging the declared totals up front bounds the upload.
        declared = sum(info.file_size for info in infos)
        reason = budget.refusal(members=len(infos), expanded_bytes=declared)
        if reason:
            yield FileOutcome(name=incoming.name, status="rejected", reason=reason)
            return
        budget.charge(members=len(infos), expanded_bytes=declared)
        members: list[tuple[int, zipfile.ZipInfo, str]] = []
        for index, info in enumerate(infos):
            if info.is_dir() or info.filename.endswith(("/", "\\")):
                continue
            parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p)
            if not parts or _is_junk(parts):
                continue
            shown_name = f"{incoming.name}/{_shown('/'.join(p for p in parts if p != '.'))}"
            members.append((index, info, shown_name))
        if on_open is not None:
            on_open(max(len(members), 1))
        if not members:
            yield FileOutcome(
                name=incoming.name, status="rejected", reason="archive contains no files"
            )
            return
        dest.mkdir(parents=True, exist_ok=True)
        for index, info, shown_name in members:
            try:
                _check_member(info, max_member=max_member)
                target = _extract(archive, info, dest, index)
            except _MemberRejected as exc:
                yield FileOutcome(name=shown_name, status="rejected", reason=exc.reason)
                continue
            yield IncomingFile(name=shown_name, path=target)


def expand_upload(
    incoming: IncomingFile,
    *,
    dest: Path,
    budget: UploadBudget | None = None,
    on_open: Callable[[int], None] | None = None,
) -> Iterator[IncomingFile | FileOutcome]:
    """Yield the files of an upload (a zip is unpacked into ``dest`` with limits); a member
    that cannot be taken comes out as a rejected FileOutcome naming it and why.

    ``budget`` is shared by all the files of one upload (a new one per call if not given).
    Each member is inflated only when the iterator is asked for it. ``on_open(n)`` is called
    when an archive is accepted: it will yield ``n`` items in place of itself.
    """
    budget = budget if budget is not None else UploadBudget.from_settings()
    max_upload = _limit("RADREVIEW_MAX_UPLOAD_BYTES", 1024**3)
    try:
        size = incoming.path.stat().st_size
        with incoming.path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        yield FileOutcome(
            name=incoming.name,
            status="rejected",
            reason=f"cannot read the upload ({exc.strerror or type(exc).__name__})",
        )
        return
    if size == 0:
        yield FileOutcome(name=incoming.name, status="rejected", reason="empty upload (0 bytes)")
        return
    if size > max_upload:
        yield FileOutcome(
            name=incoming.name,
            status="rejected",
            reason=f"upload is {size:,} bytes; the limit is {max_upload:,}",
        )
        return
    if _is_zip(incoming, head):
        yield from _expand_zip(incoming, dest, budget, on_open)
        return
    if PurePosixPath(incoming.name.lower()).suffix in ARCHIVE_SUFFIXES or head.startswith(
        _ARCHIVE_MAGIC
    ):
        yield FileOutcome(
            name=incoming.name,
            status="rejected",
            reason="only zip archives are accepted: unpack this archive or upload it as a zip",
        )
        return
    yield incoming
