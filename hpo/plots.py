"""Figures written for users: each as PNG and PDF into a report folder."""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_figure"]


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write ``fig`` as ``<folder>/<name>.png`` and ``.pdf``, each atomically; both paths."""
    from objectives.files import atomic_path

    paths = []
    for ext in ("png", "pdf"):
        path = folder / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format=ext)
        paths.append(path)
    return paths
