"""Figures written for users: each as PNG and PDF into a report folder."""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_figure"]


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write ``fig`` as ``<folder>/<name>.png`` and ``.pdf``; returns both paths."""
    paths = []
    for ext in ("png", "pdf"):
        path = folder / f"{name}.{ext}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    return paths
