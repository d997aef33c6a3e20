"""Renderers: terminal (rich), JSON, HTML, graphs. Plain data in, text out."""
from __future__ import annotations
