"""diagnose: what is holding a deep-learning model back, and what to do next.

Importing this package is cheap: nothing heavy (torch, pandas, matplotlib) is imported here.
"""

__version__ = "0.1.0"
