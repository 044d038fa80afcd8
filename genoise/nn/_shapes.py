"""Moved to :mod:`genoise._checks`. This re-export stays only until
``genoise/ssl/backbones.py`` imports ``check_int`` from ``genoise._checks``; delete it then."""

from genoise._checks import check_int

__all__ = ["check_int"]
