"""``sparsexc datasets ...`` (to be written)."""

import click


@click.group()
def datasets() -> None:
    """List, describe and convert data sets."""
