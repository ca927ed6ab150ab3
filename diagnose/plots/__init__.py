"""matplotlib Figures (Agg) for the commands; built here, never shown."""

from __future__ import annotations


def import_in_background() -> None:
    """Start importing matplotlib's figure, artists and Agg canvas on a background thread.

    matplotlib costs about 0.9 s of imports on a small machine. A command that reads logs before it
    draws calls this first: the import then overlaps with the reading, whose heavy parts (pyarrow's
    CSV reader, numpy on whole arrays) release the GIL. Python's per-module import locks make a later
    `import matplotlib.figure` on the main thread wait for the same import, never run it twice.
    """
    import threading

    def work() -> None:
        try:
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401
            import matplotlib.lines  # noqa: F401
            import matplotlib.patches  # noqa: F401
        except Exception:  # noqa: BLE001 - the main thread's own import reports any problem
            pass

    threading.Thread(target=work, name="diagnose-import-matplotlib", daemon=True).start()
