"""Uploads and zip archives: good members come out, each hostile member is named and refused,
and nothing is written outside the destination or left half-written."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from reviewapp.imaging.ingest.archives import UploadBudget, expand_upload
from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile
from tests.imaging.deid_builders import CT_FILES, CXR_JPEG


def _zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _expand(path: Path, dest: Path, name: str | None = None) -> list[IncomingFile | FileOutcome]:
    return list(expand_upload(IncomingFile(name=name or path.name, path=path), dest=dest))


def _files(results: list[IncomingFile | FileOutcome]) -> dict[str, bytes]:
    return {r.name: r.path.read_bytes() for r in results if isinstance(r, IncomingFile)}


def _rejected(results: list[IncomingFile | FileOutcome]) -> dict[str, str]:
    return {r.name: r.reason for r in results if isinstance(r, FileOutcome)}


def _everything_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "unpacked"


def test_a_plain_file_passes_through(tmp_path: Path, dest: Path) -> None:
    incoming = IncomingFile(name="slice1.dcm", path=CT_FILES[0])
    assert list(expand_upload(incoming, dest=dest)) == [incoming]
    assert not dest.exists()


def test_an_empty_upload_is_refused(tmp_path: Path, dest: Path) -> None:
    empty = tmp_path / "nothing.dcm"
    empty.write_bytes(b"")
    assert _rejected(_expand(empty, dest)) == {"nothing.dcm": "empty upload (0 bytes)"}


def test_a_2_gb_upload_is_refused_without_reading_it(tmp_path: Path, dest: Path) -> None:
    huge = tmp_path / "huge.zip"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse
    assert _rejected(_expand(huge, dest)) == {
        "huge.zip": "upload is 2,147,483,648 bytes; the limit is 1,073,741,824"
    }


def test_zip_members_come_out_with_the_names_people_know_them_by(
    tmp_path: Path, dest: Path
) -> None:
    ct, cxr = CT_FILES[0].read_bytes(), CXR_JPEG.read_bytes()
    upload = _zip(tmp_path / "x", {"study/ct/1.dcm": ct, "study/cxr.dcm": cxr, "empty/": b""})
    results = _expand(upload, dest, name="archive.zip")
    assert _files(results) == {"archive.zip/study/ct/1.dcm": ct, "archive.zip/study/cxr.dcm": cxr}
    assert _rejected(results) == {}
    for result in results:
        assert isinstance(result, IncomingFile)
        assert result.path.parent == dest


def test_junk_and_directories_are_skipped_silently(tmp_path: Path, dest: Path) -> None:
    upload = _zip(
        tmp_path / "mac.zip",
        {
            "scan/": b"",
            "scan/a.dcm": b"DICOM-ish",
            "__MACOSX/scan/._a.dcm": b"resource fork",
            "scan/.DS_Store": b"finder",
            "scan/._b.dcm": b"apple double",
        },
    )
    results = _expand(upload, dest)
    assert list(_files(results)) == ["mac.zip/scan/a.dcm"]
    assert _rejected(results) == {}


def test_zip_slip_members_are_refused_and_nothing_lands_outside(tmp_path: Path, dest: Path) -> None:
    upload = _zip(
        tmp_path / "slip.zip",
        {
            "../../evil.dcm": b"x",
            "/etc/evil.dcm": b"x",
            "ok/../../evil2.dcm": b"x",
            "C:/evil.dcm": b"x",
            "good.dcm": b"good",
        },
    )
    before = _everything_under(tmp_path)
    results = _expand(upload, dest)
    assert _files(results) == {"slip.zip/good.dcm": b"good"}
    rejected = _rejected(results)
    assert len(rejected) == 4
    assert set(rejected.values()) == {"unsafe path (absolute or containing '..'): not extracted"}
    created = _everything_under(tmp_path) - before
    assert all(dest in p.parents or p == dest for p in created)
    assert not list(tmp_path.parent.glob("evil*"))


def test_a_symlink_member_is_refused(tmp_path: Path, dest: Path) -> None:
    upload = tmp_path / "links.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        link = zipfile.ZipInfo("series/passwd.dcm")
        link.create_system = 3
        link.external_attr = (0o120777 << 16) & 0xFFFF0000
        archive.writestr(link, "/etc/passwd")
        archive.writestr("series/1.dcm", b"image")
    results = _expand(upload, dest)
    assert _rejected(results) == {"links.zip/series/passwd.dcm": "symbolic link: not extracted"}
    assert list(_files(results)) == ["links.zip/series/1.dcm"]


def test_nested_archives_are_refused_by_name_and_by_content(tmp_path: Path, dest: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as nested:
        nested.writestr("a.dcm", b"image")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("a.dcm")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"image"))
    upload = _zip(
        tmp_path / "outer.zip",
        {
            "inner.zip": inner.getvalue(),
            "disguised.dcm": inner.getvalue(),
            "tarball.dcm": tar.getvalue(),
            "ok.dcm": b"image",
        },
    )
    results = _expand(upload, dest)
    refusal = "nested archive: unpack it and upload its files instead"
    assert _rejected(results) == {
        "outer.zip/inner.zip": refusal,
        "outer.zip/disguised.dcm": refusal,
        "outer.zip/tarball.dcm": refusal,
    }
    assert list(_files(results)) == ["outer.zip/ok.dcm"]
    # The refused members left nothing behind.
    assert len(list(dest.iterdir())) == 1


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(tmp_path: Path, dest: Path) -> None:
    upload = _zip(tmp_path / "bomb.zip", {"bomb.dcm": b"\x00" * (50 * 1024**2), "ok.dcm": b"1"})
    assert upload.stat().st_size < 200_000
    results = _expand(upload, dest)
    reason = _rejected(results)["bomb.zip/bomb.dcm"]
    assert reason.startswith("compression ratio ")
    assert reason.endswith(":1 exceeds 200:1 (a zip bomb?)")
    assert list(_files(results)) == ["bomb.zip/ok.dcm"]
    assert sum(p.stat().st_size for p in dest.iterdir()) == 1


def test_limits_on_the_whole_archive_refuse_it(
    tmp_path: Path, dest: Path, settings: Settings
) -> None:
    upload = _zip(tmp_path / "many.zip", {f"{i}.dcm": b"x" * 1000 for i in range(20)})
    settings.RADREVIEW_MAX_ARCHIVE_MEMBERS = 10
    assert _rejected(_expand(upload, dest)) == {
        "many.zip": "archive has 20 members; the limit is 10"
    }
    settings.RADREVIEW_MAX_ARCHIVE_MEMBERS = 100
    settings.RADREVIEW_MAX_ARCHIVE_BYTES = 5000
    reason = _rejected(_expand(upload, dest))["many.zip"]
    assert (
        reason
        == "archive expands to 20,000 bytes; the limit is 5,000 (split it into smaller uploads)"
    )
    assert not dest.exists() or not list(dest.iterdir())


def test_a_member_that_lies_about_its_size_is_refused_and_removed(
    tmp_path: Path, dest: Path
) -> None:
    payload = b"A" * 5000
    upload = _zip(tmp_path / "liar.zip", {"liar.dcm": payload, "ok.dcm": b"fine"})
    data = bytearray(upload.read_bytes())
    # Shrink the declared uncompressed size (local header and central directory) to 100.
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 100)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)
    upload.write_bytes(bytes(data))
    results = _expand(upload, dest)
    reason = _rejected(results)["liar.zip/liar.dcm"]
    assert reason.startswith(("corrupt member", "inflates past its declared size"))
    assert _files(results) == {"liar.zip/ok.dcm": b"fine"}
    assert len(list(dest.iterdir())) == 1


def test_a_corrupt_or_empty_zip_is_named(tmp_path: Path, dest: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert _rejected(_expand(broken, dest))["broken.zip"].startswith("not a readable zip archive")
    only_junk = _zip(tmp_path / "junk.zip", {"__MACOSX/._x": b"x", "dir/": b""})
    assert _rejected(_expand(only_junk, dest)) == {"junk.zip": "archive contains no files"}


def test_other_archive_formats_are_refused_with_advice(tmp_path: Path, dest: Path) -> None:
    tgz = tmp_path / "study.tar.gz"
    with tarfile.open(tgz, "w:gz") as archive:
        archive.add(CT_FILES[0], arcname="1.dcm")
    assert _rejected(_expand(tgz, dest)) == {
        "study.tar.gz": "only zip archives are accepted: unpack this archive or upload it as a zip"
    }


def test_two_archives_can_unpack_into_one_destination(tmp_path: Path, dest: Path) -> None:
    first = _zip(tmp_path / "a.zip", {"1.dcm": b"first"})
    second = _zip(tmp_path / "b.zip", {"1.dcm": b"second"})
    results = _expand(first, dest) + _expand(second, dest)
    assert _files(results) == {"a.zip/1.dcm": b"first", "b.zip/1.dcm": b"second"}


def test_the_member_count_is_checked_before_the_directory_is_parsed(
    tmp_path: Path, dest: Path, settings: Settings
) -> None:
    upload = _zip(tmp_path / "many.zip", {f"{i}.dcm": b"" for i in range(50)})
    data = bytearray(upload.read_bytes())
    # Claim 65,000 entries in the end record: zipfile would go looking for all of them.
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 65000, 65000)
    upload.write_bytes(bytes(data))
    settings.RADREVIEW_MAX_ARCHIVE_MEMBERS = 1000
    assert _rejected(_expand(upload, dest)) == {
        "many.zip": "archive has 65,000 members; the limit is 1,000"
    }


def test_a_central_directory_too_big_for_the_member_limit_is_refused(
    tmp_path: Path, dest: Path, settings: Settings
) -> None:
    # The end record may understate the count; the directory's size still bounds it.
    upload = _zip(tmp_path / "dense.zip", {f"{i:04d}.dcm": b"" for i in range(40)})
    data = bytearray(upload.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)
    upload.write_bytes(bytes(data))
    settings.RADREVIEW_MAX_ARCHIVE_MEMBERS = 2
    reason = _rejected(_expand(upload, dest))["dense.zip"]
    assert reason.endswith("bytes, too large for the limit of 2 members")


def test_a_zip64_archive_is_counted_too(
    tmp_path: Path, dest: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = tmp_path / "big.zip"
    # Make the writer switch to zip64 end records at 10 entries instead of 65,535.
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 10)
    with zipfile.ZipFile(upload, "w", allowZip64=True) as archive:
        for i in range(30):
            archive.writestr(f"{i}.dcm", b"")
    data = bytearray(upload.read_bytes())
    # Claim 9 million entries in the zip64 end record; only our own count reads that field.
    record = data.rindex(b"PK\x06\x06")
    struct.pack_into("<QQ", data, record + 24, 9_000_000, 9_000_000)
    upload.write_bytes(bytes(data))
    settings.RADREVIEW_MAX_ARCHIVE_MEMBERS = 1000
    assert _rejected(_expand(upload, dest)) == {
        "big.zip": "archive has 9,000,000 members; the limit is 1,000"
    }


def test_a_small_member_with_a_huge_ratio_is_refused(tmp_path: Path, dest: Path) -> None:
    # Well under a megabyte, but 500:1 or more: ten thousand of these would be 5 GB.
    upload = _zip(tmp_path / "small.zip", {"air.dcm": b"\x00" * (512 * 1024), "ok.dcm": b"1"})
    results = _expand(upload, dest)
    reason = _rejected(results)["small.zip/air.dcm"]
    assert reason.startswith("compression ratio ")
    assert reason.endswith(":1 exceeds 200:1 (a zip bomb?)")
    assert list(_files(results)) == ["small.zip/ok.dcm"]


def test_zips_of_one_upload_share_its_limits(
    tmp_path: Path, dest: Path, settings: Settings
) -> None:

    first = _zip(tmp_path / "a.zip", {f"{i}.dcm": bytes(range(256)) * 4 for i in range(3)})
    second = _zip(tmp_path / "b.zip", {f"{i}.dcm": bytes(range(256)) * 4 for i in range(3)})
    settings.RADREVIEW_MAX_ARCHIVE_BYTES = 5 * 1024
    # Each alone is within the limit...
    assert _rejected(_expand(first, dest)) == {}
    assert _rejected(_expand(second, dest)) == {}
    # ...but not together in one upload: the second is refused whole, nothing of it expanded.
    budget = UploadBudget.from_settings()
    results = [
        *expand_upload(IncomingFile(name="a.zip", path=first), dest=tmp_path / "1", budget=budget),
        *expand_upload(IncomingFile(name="b.zip", path=second), dest=tmp_path / "2", budget=budget),
    ]
    assert len(_files(results)) == 3
    assert _rejected(results) == {
        "b.zip": "archive expands to 6,144 bytes with the archives before it in this upload;"
        " the limit is 5,120 (split it into smaller uploads)"
    }
    assert not (tmp_path / "2").exists()

    settings.RADREVIEW_MAX_ARCHIVE_BYTES = 1024**2
    settings.RADREVIEW_MAX_ARCHIVE_MEMBERS = 5
    budget = UploadBudget.from_settings()
    results = [
        *expand_upload(IncomingFile(name="a.zip", path=first), dest=tmp_path / "3", budget=budget),
        *expand_upload(IncomingFile(name="b.zip", path=second), dest=tmp_path / "4", budget=budget),
    ]
    assert _rejected(results) == {
        "b.zip": "archive has 3 members, 6 with the archives before it in this upload;"
        " the limit is 5 (split it into smaller uploads)"
    }


def test_members_are_inflated_only_when_asked_for(tmp_path: Path, dest: Path) -> None:
    upload = _zip(tmp_path / "lazy.zip", {f"{i}.dcm": bytes(range(256)) * 40 for i in range(5)})
    members = expand_upload(IncomingFile(name="lazy.zip", path=upload), dest=dest)
    first = next(members)
    assert isinstance(first, IncomingFile)
    assert list(dest.iterdir()) == [first.path]
