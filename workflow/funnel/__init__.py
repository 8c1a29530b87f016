"""Library behind the radon funnel workflow.

The Snakemake rules stay thin: every script in ``workflow/scripts`` calls into
this package, and the package is what the unit tests exercise.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
