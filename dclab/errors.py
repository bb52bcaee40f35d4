"""Errors dclab raises on purpose. Each message says what went wrong and what to do."""


class DclabError(Exception):
    """A problem the user can fix: bad input, missing data, an unreadable file."""


class DataNotFoundError(DclabError):
    """A dataset is not on disk and could not be downloaded."""


class DczFormatError(DclabError):
    """A ``.dcz`` file is truncated, corrupted, foreign or from a future version."""
