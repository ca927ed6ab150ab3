"""matplotlib Figures (Agg) for the commands; built here, never shown."""

from __future__ import annotations

from typing import Any


def import_in_background() -> None:
    """Start importing matplotlib's figure, artists and Agg canvas on a background thread.

    matplotlib costs about 0.9 s of imports on a small machine. A command that reads logs before it
    draws calls this first: the import then overlaps with the reading, whose heavy parts (pyarrow's
    CSV reader, numpy on whole arrays) release the GIL. Python's per-module import locks make a later
    `import matplotlib.figure` on the main thread wait for the same import, never run it twice.
    """
    import contextlib
    import threading

    def work() -> None:
        with contextlib.suppress(Exception):  # the main thread's own import reports any problem
            import_matplotlib()

    threading.Thread(target=work, name="diagnose-import-matplotlib", daemon=True).start()


def import_matplotlib() -> None:
    """Import what drawing the curves needs: matplotlib's figure, artists and Agg canvas."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.lines  # noqa: F401
    import matplotlib.patches  # noqa: F401

    import diagnose.plots.curves  # noqa: F401


def plain_number(x: float) -> str:
    """A tick value as people write it: 0.001 to 9999 in decimals (3 significant digits), else
    mantissa and exponent with no padding (1e-4, 2.5e-5, 3e6)."""
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def log_scale(ax: Any, which: str = "y") -> None:
    """Put an axis on a log scale labelled in plain text (0.1, 0.01, 0.001, 1e-4), as learning rates
    are written. matplotlib's default labels (10 to the power -4) are mathtext, whose first use
    imports and runs pyparsing: about half a second on a small machine. Which ticks there are and
    which of them carry a label stay matplotlib's own."""
    from matplotlib.ticker import LogFormatter

    class PlainLog(LogFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            if not super().__call__(x, pos):  # a tick matplotlib leaves unlabelled
                return ""
            return self.fix_minus(plain_number(x))

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(PlainLog())
    axis.set_minor_formatter(PlainLog())
