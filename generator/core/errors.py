"""User-facing errors: the CLI prints their one-line message and exits non-zero."""


class CfgenError(Exception):
    """Base of every error that is the user's input, not a bug."""


class SpecError(CfgenError):
    """An architecture spec is malformed or impossible."""


class CheckpointError(CfgenError):
    """A checkpoint file cannot be used."""


class DataError(CfgenError):
    """A dataset is missing or malformed."""


class LoweringError(CfgenError):
    """A model cannot be mapped to hardware (unsupported or inexact construct)."""


class BuildError(CfgenError):
    """A build cannot be produced (bad board, folding, output folder)."""


class GraphError(CfgenError):
    """A build folder's hardware graph (graph.json / graph.npz) is missing or damaged."""
