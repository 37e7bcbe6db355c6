"""The run folder: its layout, its ``meta.json``, and writing it as a whole or not at all.

A run writes into a temporary folder inside the run folder (:func:`staged_folder`), whose files replace the
earlier run's only when every stage is done (a pretrained model is carried over, to be reused when it
matches), so an interrupted run never leaves old and new files mixed; files of the user's in the folder
are not touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import uuid
from pathlib import Path

from formula_search.errors import InputError

#: What a run folder holds (``fsearch run``); ``law.tex``, ``report.md`` and the plots come from export.
RUN_FILES = {
    "model.pt": "the pretrained vanilla MLP (loaded with weights_only=True)",
    "pretrain_curve.csv": "its training loss after each number of Adam steps",
    "ranking.csv": "the ranking table (meta_tailor.advanced.RANK_COLUMNS), one row per accepted survivor",
    "screen.csv": "every screened (formula, inner_lr, inner_steps) and its screen loss",
    "meta_curves.csv": "the long stage epoch by epoch, per finalist and outer rate",
    "comparators.csv": "vanilla MLP, MLP with more epochs, Noether winner, oracle, HNN",
    "horizons.csv": "test error per prediction horizon and method",
    "law_ranking.csv": "the ranking with the paper's protocol that chose the law, when the final model "
    "uses another protocol",
    "protocol_cv.csv": "--protocol auto: every fold's held-out rollout MSE of the law under each protocol",
    "cv.csv": "--law-choice cv: every fold's held-out rollout MSE per finalist",
    "winner.pt": "the meta-tailored winner's MLP weights and formula parameters",
    "meta.json": "dataset, variables and units, settings, device, timings, the winner, and a run id",
}

#: Files that export and plot add to a run folder.
EXPORT_FILES = ("law.tex", "report.md")

#: Plots ``fsearch plot`` writes into a run folder.
PLOT_FILES = (
    "horizon_error.png",
    "law_along_test.png",
    "meta_curves.png",
    "cv.png",
    "pretrain_curve.png",
)

#: Every file a run, its export and its plots own in a run folder: a new run replaces them all (those it
#: does not write are removed, so nothing of an earlier run stays beside it); other files are not touched.
OWNED_FILES = tuple(RUN_FILES) + EXPORT_FILES + PLOT_FILES


def run_folder(run: str | None, dataset: str) -> Path:
    return Path(run) if run else Path("runs") / Path(dataset).stem


def write_json(obj: dict, path: Path) -> None:
    from formula_search.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def read_meta(run: Path) -> dict:
    path = run / "meta.json"
    if not path.exists():
        raise InputError(f"{run}: not a run directory (no meta.json); run `fsearch rank` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: broken JSON ({exc.msg})") from exc


def file_hash(path: Path) -> str | None:
    """The SHA-256 of a file, or ``None`` when there is none."""
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_run(run: Path, meta: dict) -> None:
    """Refuse a run folder whose model was replaced after the run (``fsearch pretrain`` into it again):
    its ranking and comparators would be reported beside another model.

    Raises:
        InputError: naming the folder and what to rerun.
    """
    expected = meta.get("model_sha256")
    if expected is not None and file_hash(Path(run) / "model.pt") != expected:
        raise InputError(
            f"{run}: model.pt is not the model this run ranked with (it was replaced or removed after "
            "the run); rerun `fsearch rank` (or `run`) into this folder"
        )


def ensure_writable(folder: Path) -> None:
    """Make ``folder`` and write a probe file there now, so that a read-only place fails before the
    work, not after it (raises the file system's :class:`OSError`, which names the path)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".probe-{uuid.uuid4().hex[:8]}"
    probe.write_bytes(b"")
    probe.unlink()


@contextlib.contextmanager
def staged_folder(final: Path):
    """The temporary folder a run writes into (:func:`_start_folder`): committed into ``final`` when the
    block ends normally (:func:`_commit_folder`), removed when it raises (and ``final`` with it, if the
    run made it and it is still empty)."""
    created = not final.exists()
    out = _start_folder(final)
    try:
        yield out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if created and final.is_dir() and not any(final.iterdir()):
            final.rmdir()  # a failed first run leaves no empty folder behind
        raise
    _commit_folder(out, final)


def _start_folder(final: Path) -> Path:
    """A fresh temporary folder inside ``final`` (made if needed), holding its pretrained model if any."""
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: is a file, not a run folder")
    ensure_writable(final)
    for stale in final.glob(".partial-*"):  # left by a run that was killed (no Python exception)
        shutil.rmtree(stale, ignore_errors=True)
    out = final / f".partial-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    for name in ("model.pt", "pretrain_curve.csv"):
        if (final / name).is_file():
            shutil.copy2(final / name, out / name)
    return out


def _commit_folder(out: Path, final: Path) -> None:
    """Move the finished run's files from ``out`` into ``final``, replacing every file an earlier run
    owned there (:data:`OWNED_FILES`) and touching no other file; ``meta.json`` last. If a move fails,
    the earlier run's files are put back and the error says where the new run is."""
    backup = final / f".old-{uuid.uuid4().hex[:8]}"
    backup.mkdir()
    moved: list[str] = []
    try:
        for name in OWNED_FILES:
            if (final / name).exists():
                (final / name).rename(backup / name)
        names = sorted((p.name for p in out.iterdir()), key=lambda n: n == "meta.json")
        for name in names:
            (out / name).rename(final / name)
            moved.append(name)
    except OSError as exc:
        # the new files go back to the temporary folder, the old ones back in place
        for name in moved:
            (final / name).rename(out / name)
        for p in backup.iterdir():
            p.rename(final / p.name)
        backup.rmdir()
        raise InputError(
            f"{final}: could not move the finished run into place ({exc}); it is in {out}"
        ) from None
    out.rmdir()
    shutil.rmtree(backup, ignore_errors=True)
