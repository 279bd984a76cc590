"""glancelite-manage store audit against images made through the real API under gunicorn.

The stores are damaged as an operator finds them damaged (a file planted, one deleted, one
truncated, leftovers in staging and the tasks store); the audit runs as a subprocess.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import requests

from tests.support.server import Server, manage, write_config

OCTETS = {"Content-Type": "application/octet-stream"}
HOUR = 3600


def _image(url: str, data: bytes | None = None, *, store: str | None = None, stage: bool = False) -> str:
    image_id = requests.post(url + "/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    if data is not None:
        headers = dict(OCTETS, **({"X-Image-Meta-Store": store} if store else {}))
        target = "stage" if stage else "file"
        resp = requests.put(f"{url}/v2/images/{image_id}/{target}", data=data, headers=headers)
        assert resp.status_code == 204, resp.text
    return image_id


def _plant(path, data: bytes, *, age: float = 0) -> str:
    path.write_bytes(data)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return str(path)


@pytest.fixture
def damaged(tmp_path):
    """A service with images in both stores and one staged image, then the stores damaged."""
    conf = write_config(tmp_path)
    server = Server(conf).start()
    try:
        url = server.url
        kept = _image(url, b"k" * 1000)
        in_slow = _image(url, b"s" * 700, store="slow")
        lost = _image(url, b"l" * 500)
        shrunk = _image(url, b"t" * 400)
        staged = _image(url, b"g" * 300, stage=True)  # uploading: its staged file is in use
        assert requests.get(f"{url}/v2/images/{staged}").json()["status"] == "uploading"
        os.unlink(tmp_path / "fast" / lost)
        with open(tmp_path / "fast" / shrunk, "r+b") as fh:
            fh.truncate(100)
        planted = {
            "old_orphan": _plant(tmp_path / "fast" / str(uuid.uuid4()), b"o" * 64, age=2 * HOUR),
            "new_orphan": _plant(tmp_path / "slow" / str(uuid.uuid4()), b"n" * 32),
            "stale_stage": _plant(tmp_path / "staging" / kept, b"x" * 16, age=2 * HOUR),  # kept is active
            "stale_work": _plant(tmp_path / "tasks" / f"{uuid.uuid4()}.download", b"w" * 8),
        }
        yield dict(
            conf=conf,
            url=url,
            root=tmp_path,
            kept=kept,
            in_slow=in_slow,
            lost=lost,
            shrunk=shrunk,
            staged=staged,
            **planted,
        )
    finally:
        server.stop()


def _lines(proc, first: str) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.split(" ", 1)[0] == first]


def test_audit_reports_each_kind_and_removes_only_old_orphans(damaged):
    root = damaged["root"]
    proc = manage(damaged["conf"], "store", "audit", check=False)
    assert proc.returncode == 1, proc
    assert proc.stderr == ""  # no progress when stderr is not a terminal
    out = proc.stdout

    orphans = _lines(proc, "orphan")
    assert sorted(line.split()[2] for line in orphans) == sorted(
        f"file://{damaged[k]}" for k in ("old_orphan", "new_orphan")
    )
    assert any(line.startswith("orphan      fast ") and "size=64 age=" in line for line in orphans)
    missing = _lines(proc, "missing")
    assert missing == [f"missing     fast file://{root / 'fast' / damaged['lost']} image={damaged['lost']}"]
    wrong = _lines(proc, "wrong-size")
    assert wrong == [
        f"wrong-size  fast file://{root / 'fast' / damaged['shrunk']} image={damaged['shrunk']} size=100 expected=400"
    ]
    leftovers = _lines(proc, "leftover")
    assert len(leftovers) == 2, out
    stage_line = next(line for line in leftovers if "os_glance_staging_store" in line)
    assert f"file://{damaged['stale_stage']}" in stage_line and "(its image is active)" in stage_line
    work_line = next(line for line in leftovers if "os_glance_tasks_store" in line)
    assert f"file://{damaged['stale_work']}" in work_line and "does not exist)" in work_line
    assert damaged["staged"] not in out  # staged data of an uploading image is in use
    assert damaged["in_slow"] not in out and f"/fast/{damaged['kept']}" not in out
    assert "store fast (file): 3 objects, 2 referenced" in out
    assert "store slow (file): 2 objects, 1 referenced" in out
    assert "store os_glance_staging_store (file, reserved): 2 objects, 1 referenced" in out
    assert out.splitlines()[-1] == (
        "summary: stores audited=4 skipped=0 failed=0; "
        "orphan=2 missing=1 wrong-size=1 leftover=2 unassigned=0; removed=0 not-removed=0"
    )

    proc = manage(damaged["conf"], "store", "audit", "--remove-orphans-older-than", "1h", check=False)
    assert proc.returncode == 1, proc  # the missing and the wrong-size location remain
    removed = sorted(line.split()[2] for line in _lines(proc, "removed"))
    assert removed == sorted(f"file://{damaged[k]}" for k in ("old_orphan", "stale_stage"))
    assert proc.stdout.splitlines()[-1].endswith("; removed=2 not-removed=0")
    assert not os.path.exists(damaged["old_orphan"]) and not os.path.exists(damaged["stale_stage"])
    for kept in (damaged["new_orphan"], damaged["stale_work"]):  # newer than an hour
        assert os.path.exists(kept)
    for referenced in (root / "fast" / damaged["kept"], root / "fast" / damaged["shrunk"]):
        assert referenced.exists()  # referenced data stays, even when it is damaged
    assert (root / "slow" / damaged["in_slow"]).exists()
    assert (root / "staging" / damaged["staged"]).exists()

    # Repaired: the damaged images deleted, the young leftovers gone: nothing left.
    for image_id in (damaged["lost"], damaged["shrunk"]):
        assert requests.delete(f"{damaged['url']}/v2/images/{image_id}").status_code == 204
    proc = manage(damaged["conf"], "store", "audit", "--remove-orphans-older-than", "0", check=False)
    assert _lines(proc, "removed") and proc.returncode == 0, proc
    proc = manage(damaged["conf"], "store", "audit", check=False)
    assert proc.returncode == 0, proc
    assert proc.stdout.splitlines()[-1] == (
        "summary: stores audited=4 skipped=0 failed=0; "
        "orphan=0 missing=0 wrong-size=0 leftover=0 unassigned=0; removed=0 not-removed=0"
    )


def test_bad_age_and_bad_configuration_exit_2(tmp_path):
    conf = write_config(tmp_path)
    manage(conf, "db", "sync")
    proc = manage(conf, "store", "audit", "--remove_orphans_older_than", "soon", check=False)
    assert proc.returncode == 2 and "Invalid age 'soon'" in proc.stderr, proc
    (tmp_path / "slow").write_bytes(b"not a directory")
    proc = manage(conf, "store", "audit", check=False)
    assert proc.returncode == 2, proc
    assert proc.stderr.strip().splitlines() == [
        f"glancelite: invalid configuration: [slow] filesystem_store_datadir: {tmp_path / 'slow'} is not a directory"
    ]
